#!/usr/bin/env bash
# Every list pages the same way, whichever module owns it: `limit` 1..100
# (0, 101 and non-numbers are 422 validation_failed), an opaque `cursor`
# (a raw id, a forged or another list's cursor is 422), and a full page
# sends `Link: <its own path?filters&limit=N&cursor=C>; rel="next"` whose
# target is the next page; the last page sends no Link. Invoices and the
# inbox are checked the same way in billing_plan_changes and
# notifications_inbox, where they have rows.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve --no-workers

new_user lists-member >/dev/null
MEMBER_EMAIL=$EMAIL
new_user lists-owner >/dev/null
OWNER=$TOKEN ORG=$ORG_ID
new_org "Second" >/dev/null
add_member "$ORG" "$MEMBER_EMAIL" member
api POST "/v1/orgs/$ORG/projects" '{"name":"A"}' && expect 201
api POST "/v1/orgs/$ORG/projects" '{"name":"B"}' && expect 201
api POST "/v1/orgs/$ORG/tasks" '{"title":"one"}' && expect 201
TASK=$(jget .id)
api POST "/v1/orgs/$ORG/tasks" '{"title":"two"}' && expect 201
api POST "/v1/orgs/$ORG/tasks/$TASK/comments" '{"body":"first"}' && expect 201
api POST "/v1/orgs/$ORG/tasks/$TASK/comments" '{"body":"second"}' && expect 201

lists=(/v1/orgs "/v1/orgs/$ORG/members" "/v1/orgs/$ORG/projects" "/v1/orgs/$ORG/tasks"
       "/v1/orgs/$ORG/tasks/$TASK/comments")

for list in "${lists[@]}"; do
    TOKEN=$OWNER api GET "$list?limit=1"
    expect 200 "$list?limit=1"
    first=$(jget '.data[0] | tojson')
    cursor=$(jget .next_cursor)
    [ "$(jget '.data | length')" = 1 ] && [ "$cursor" != null ] || fail "$list page 1: $BODY"
    [[ "$cursor" =~ ^[A-Za-z0-9_-]+$ ]] || fail "$list: cursor not opaque base64url: $cursor"
    link=$(header Link || true)
    [ "$link" = "<$list?limit=1&cursor=$cursor>; rel=\"next\"" ] || fail "$list: Link: $link"
    next=${link#<} next=${next%%>*}
    TOKEN=$OWNER api GET "$next"
    expect 200 "$list: the Link target"
    [ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0] | tojson')" != "$first" ] &&
        [ "$(jget .next_cursor)" = null ] || fail "$list page 2: $BODY"
    [ -z "$(header Link)" ] || fail "$list: Link on the last page: $(header Link)"
    TOKEN=$OWNER api GET "$list"
    expect 200
    [ "$(jget '.data | length')" = 2 ] && [ -z "$(header Link)" ] || fail "$list: one page: $BODY"
    for q in limit=0 limit=101 limit=x cursor=bogus "cursor=$ORG" "cursor=$(printf 'x\001y' | base64)"; do
        TOKEN=$OWNER api GET "$list?$q"
        expect 422 "$list?$q"
        [ "$(jget .code)" = validation_failed ] || fail "$list?$q: $BODY"
    done
    TOKEN=$OWNER api GET "$list?limit=100"
    expect 200 "$list?limit=100"
done
pass "orgs, members, projects, tasks and comments: one limit rule, opaque cursors, Link to the next page"

# A cursor is only good for the list that gave it.
TOKEN=$OWNER api GET "/v1/orgs?limit=1"
ORGS_CURSOR=$(jget .next_cursor)
TOKEN=$OWNER api GET "/v1/orgs/$ORG/tasks?cursor=$ORGS_CURSOR"
expect 422 "an orgs cursor on tasks"
TOKEN=$OWNER api GET "/v1/orgs/$ORG/tasks?limit=1"
TOKEN=$OWNER api GET "/v1/orgs/$ORG/members?cursor=$(jget .next_cursor)"
expect 422 "a tasks cursor on members"
pass "a cursor from another list is refused"

# Filters travel in the Link, encoded as sent.
TOKEN=$OWNER api GET "/v1/orgs/$ORG/tasks?limit=1&status=todo&q=o"
expect 200
link=$(header Link || true)
[[ "$link" == "</v1/orgs/$ORG/tasks?status=todo&q=o&limit=1&cursor="*'>; rel="next"' ]] ||
    fail "filters in Link: $link"
pass "a filtered list's Link keeps its filters"
