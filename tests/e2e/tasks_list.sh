#!/usr/bin/env bash
# Listing tasks: filters (status, assignee_id incl. `me`, project_id, q),
# opaque cursor pages with next_cursor and a Link header, and invalid
# arguments answered as problems, never as 500.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

bh_start

read -r OWNER ORG OWNER_ID _ <<<"$(tasks_signup owner)"
read -r MEMBER _ MEMBER_ID MEMBER_EMAIL <<<"$(tasks_signup member)"
TOKEN=$OWNER tasks_add_member "$ORG" "$MEMBER_EMAIL" member
T="/v1/orgs/$ORG/tasks"

TOKEN=$OWNER api POST "/v1/orgs/$ORG/projects" '{"name":"Launch"}'
expect 201
PROJECT=$(jget .id)

# 25 tasks: every 5th in the project, every 3rd assigned to the member,
# two of them with titles to search for.
for i in $(seq 1 25); do
  body="{\"title\":\"task $i\""
  [ $((i % 5)) = 0 ] && body+=",\"project_id\":\"$PROJECT\""
  [ $((i % 3)) = 0 ] && body+=",\"assignee_id\":\"$MEMBER_ID\""
  body+="}"
  [ "$i" = 7 ] && body='{"title":"Fix 100% of the bugs_now"}'
  [ "$i" = 8 ] && body='{"title":"fix the FIX"}'
  TOKEN=$OWNER api POST "$T" "$body"
  expect 201 "create task $i"
  ids[$i]=$(jget .id)
done
TOKEN=$OWNER api PATCH "$T/${ids[1]}" '{"status":"in_progress"}'
expect 200

# --- pages ------------------------------------------------------------------
TOKEN=$OWNER api GET "$T"
expect 200
[ "$(jget '.data | length')" = 20 ] || fail "default page size: $(jget '.data | length')"
[ "$(jget '.data[0].id')" = "${ids[25]}" ] || fail "newest first"
CURSOR=$(jget .next_cursor)
[ "$CURSOR" != null ] || fail "no next_cursor on a full page"
link=$(header Link)
[[ "$link" == "<$T?limit=20&cursor=$CURSOR>; rel=\"next\"" ]] || fail "Link: $link"
TOKEN=$OWNER api GET "$T?cursor=$CURSOR"
expect 200
[ "$(jget '.data | length')" = 5 ] && [ "$(jget .next_cursor)" = null ] || fail "second page: $BODY"
[ "$(jget '.data[4].id')" = "${ids[1]}" ] || fail "oldest last"
[ -z "$(header Link)" ] || fail "Link on the last page"
pass "pages of 20, newest first, next_cursor and Link until the last page"

seen=""
url="$T?limit=7"
for _ in 1 2 3 4 5; do
  TOKEN=$OWNER api GET "$url"
  expect 200
  seen+=$(jget '.data[].id')$'\n'
  next=$(header Link | sed -E 's/^<([^>]*)>.*/\1/' || true)
  [ -n "$next" ] || break
  url=$next
done
[ "$(sed '/^$/d' <<<"$seen" | sort -u | wc -l)" = 25 ] || fail "following Link did not visit 25 distinct tasks"
pass "following Link with limit=7 visits every task exactly once"

# --- filters ----------------------------------------------------------------
TOKEN=$OWNER api GET "$T?status=in_progress"
[ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0].id')" = "${ids[1]}" ] || fail "status filter: $BODY"
TOKEN=$OWNER api GET "$T?status=todo&limit=100"
[ "$(jget '.data | length')" = 24 ] || fail "status=todo"
TOKEN=$OWNER api GET "$T?project_id=$PROJECT"
[ "$(jget '.data | length')" = 5 ] || fail "project filter: $(jget '.data | length')"
TOKEN=$OWNER api GET "$T?assignee_id=$MEMBER_ID&limit=100"
n_assigned=$(jget '.data | length')
[ "$n_assigned" -ge 6 ] || fail "assignee filter: $n_assigned"
TOKEN=$MEMBER api GET "$T?assignee_id=me&limit=100"
[ "$(jget '.data | length')" = "$n_assigned" ] || fail "assignee_id=me"
TOKEN=$OWNER api GET "$T?assignee_id=me"
[ "$(jget '.data | length')" = 0 ] || fail "the owner has no tasks assigned"
TOKEN=$OWNER api GET "$T?project_id=$PROJECT&assignee_id=$MEMBER_ID"
[ "$(jget '.data | length')" = 1 ] || fail "project and assignee (task 15 only): $BODY"
TOKEN=$OWNER api GET "$T?q=fix"
[ "$(jget '.data | length')" = 2 ] || fail "q=fix: $BODY"
TOKEN=$OWNER api GET "$T?q=100%25"
[ "$(jget '.data | length')" = 1 ] || fail "q with a literal %: $BODY"
TOKEN=$OWNER api GET "$T?q=s_n"
[ "$(jget '.data | length')" = 1 ] || fail "q with a literal _: $BODY"
TOKEN=$OWNER api GET "$T?q=k_1"
[ "$(jget '.data | length')" = 0 ] || fail "_ in q is not a wildcard (would match 'task 1x'): $BODY"
pass "filters: status, project_id, assignee_id (and me), q (case-insensitive, literal % and _)"

TOKEN=$OWNER api GET "$T?status=todo&q=task&limit=3"
CURSOR=$(jget .next_cursor)
[[ "$(header Link)" == "<$T?status=todo&q=task&limit=3&cursor=$CURSOR>; rel=\"next\"" ]] ||
  fail "Link keeps the filters: $(header Link)"
pass "the Link of a filtered page keeps its filters"

# --- invalid arguments ------------------------------------------------------
for q in "status=closed" "assignee_id=bob" "project_id=1" "limit=0" "limit=101" "limit=ten" \
         "cursor=garbage" "cursor=$(printf 'x|y' | base64)" "q="; do
  TOKEN=$OWNER api GET "$T?$q"
  expect 422 "GET ?$q"
  [ "$(jget .code)" = validation_failed ] || fail "?$q: $BODY"
done
TOKEN=$OWNER api GET "$T?project_id=00000000-0000-4000-8000-000000000000"
expect 404 "a project that is not the org's"
pass "invalid filters and cursors answer 422 validation_failed; an unknown project 404"
