#!/usr/bin/env bash
# First pages of task lists are cached per org and query (X-Cache on the
# first page), and every committed change to the org's tasks — create,
# update, delete, made in this process or another — is in the next first
# page, with no sleep in between. Per-caller filters ("assignee_id=me") are
# separate pages.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

bh_start
URL_A=$BH_URL
bh_start
URL_B=$BH_URL
on() { BH_URL=$1; }

on "$URL_A"
read -r TOKEN ORG USER _ <<<"$(tasks_signup listcache)"
T="/v1/orgs/$ORG/tasks"
for i in 1 2 3; do
  api POST "$T" "{\"title\":\"first $i\"}"
  expect 201
done

api GET "$T?limit=2"
expect 200
[ "$(header X-Cache)" = miss ] || fail "first list: X-Cache $(header X-Cache)"
first=$BODY
api GET "$T?limit=2"
[ "$(header X-Cache)" = hit ] || fail "second list: X-Cache $(header X-Cache)"
[ "$BODY" = "$first" ] || fail "a cached page differs: $BODY vs $first"
[ "$(jget '.data | length')" = 2 ] && [ "$(jget .next_cursor)" != null ] || fail "cached page: $BODY"
api GET "$T?limit=2&cursor=$(jget .next_cursor)"
expect 200
[ -z "$(header X-Cache)" ] || fail "a later page is not cached: X-Cache $(header X-Cache)"
pass "the first page is cached (miss, then the same body as a hit); later pages are not"

# Changes in A show in B's next first page, and in A's.
on "$URL_B"
api GET "$T?limit=2"
api GET "$T?limit=2"
[ "$(header X-Cache)" = hit ] || fail "B's warm list: X-Cache $(header X-Cache)"
on "$URL_A"
api POST "$T" '{"title":"newest"}'
expect 201
NEWEST=$(jget .id)
for u in "$URL_B" "$URL_A"; do
  on "$u"
  api GET "$T?limit=2"
  [ "$(jget '.data[0].title')" = newest ] || fail "list in $u after a create: $BODY"
done
on "$URL_A"
api PATCH "$T/$NEWEST" '{"title":"renamed"}'
expect 200
on "$URL_B"
api GET "$T?limit=2"
[ "$(jget '.data[0].title')" = renamed ] || fail "list in B after an update in A: $BODY"
on "$URL_A"
api DELETE "$T/$NEWEST"
expect 204
on "$URL_B"
api GET "$T?limit=2"
[ "$(jget '.data[0].title')" = "first 3" ] || fail "list in B after a delete in A: $BODY"
pass "create, update and delete in A are in the next first page in B and in A"

# "me" is per caller: another member's assignee_id=me page is their own.
on "$URL_A"
OWNER=$TOKEN
new_user listcache-member >/dev/null
MEMBER=$TOKEN
MEMBER_ID=$USER_ID
TOKEN=$OWNER
add_member "$ORG" "$EMAIL" member
api POST "$T" "{\"title\":\"for the member\",\"assignee_id\":\"$MEMBER_ID\"}"
expect 201
api GET "$T?assignee_id=me"
[ "$(jget '.data | length')" = 0 ] || fail "owner's assignee_id=me: $BODY"
api GET "$T?assignee_id=me"
[ "$(jget '.data | length')" = 0 ] || fail "owner's cached assignee_id=me: $BODY"
TOKEN=$MEMBER
api GET "$T?assignee_id=me"
[ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0].title')" = "for the member" ] ||
  fail "member's assignee_id=me after the owner's was cached: $BODY"
pass "assignee_id=me pages are per caller"
