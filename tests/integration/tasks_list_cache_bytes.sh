#!/usr/bin/env bash
# A cached first page is sent as it was stored ("<next cursor>\n<body>" under
# tasks:page:*), without parsing: the hit's body is byte for byte the
# miss's, and its Link header is built from each request — two queries that
# share one page ("assignee_id=me" and the caller's own id) each echo their
# own filters. An entry not of that form is never sent: it is a miss, read
# from Postgres and stored again.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

: "${REDIS_PORT:?}" "${BH_REDIS_ADMIN_PASSWORD:?}"
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }

bh_start
read -r TOKEN ORG USER _ <<<"$(tasks_signup listbytes)"
T="/v1/orgs/$ORG/tasks"
for i in 1 2 3; do
  api POST "$T" "{\"title\":\"mine $i\",\"assignee_id\":\"$USER\"}"
  expect 201
done

api GET "$T?limit=2"
[ "$(header X-Cache)" = miss ] || fail "first read: X-Cache $(header X-Cache)"
miss_body=$BODY miss_link=$(header Link)
[ -n "$miss_link" ] || fail "a first page of 2 of 3 tasks has no Link"
api GET "$T?limit=2"
[ "$(header X-Cache)" = hit ] || fail "second read: X-Cache $(header X-Cache)"
[ "$BODY" = "$miss_body" ] || fail "the hit's body differs: $BODY vs $miss_body"
[ "$(header Link)" = "$miss_link" ] || fail "the hit's Link differs: $(header Link) vs $miss_link"
entry=$(rcli --scan --pattern "tasks:page:$ORG:*" | head -1)
[ -n "$entry" ] || fail "no tasks:page entry for the org"
stored=$(rcli GET "$entry")
[ "$(tail -n +2 <<<"$stored")" = "$miss_body" ] || fail "the stored page is not the body sent: $stored"
[ "$(head -1 <<<"$stored")" = "$(jget .next_cursor)" ] || fail "the stored cursor is not the page's: $stored"
pass "a hit sends the stored bytes: same body and Link as the miss"

# "me" and the caller's own id share one cached page; each echoes its filter.
api GET "$T?limit=2&assignee_id=me"
expect 200
me_body=$BODY
[ "$(header Link)" = "</v1/orgs/$ORG/tasks?assignee_id=me&limit=2&cursor=$(jget .next_cursor)>; rel=\"next\"" ] ||
  fail "Link of assignee_id=me: $(header Link)"
api GET "$T?limit=2&assignee_id=$USER"
[ "$(header X-Cache)" = hit ] || fail "the caller's own id did not share the page of me: X-Cache $(header X-Cache)"
[ "$BODY" = "$me_body" ] || fail "same page, other body: $BODY"
[ "$(header Link)" = "</v1/orgs/$ORG/tasks?assignee_id=$USER&limit=2&cursor=$(jget .next_cursor)>; rel=\"next\"" ] ||
  fail "a shared page's Link does not echo this request's filter: $(header Link)"
pass "a shared cached page gets each request's own Link"

# Entries not of the stored form are misses, never sent.
for bad in 'no newline at all' $'cursor\nnot json' $'\n'; do
  for k in $(rcli --scan --pattern "tasks:page:$ORG:*"); do rcli SET "$k" "$bad" >/dev/null; done
  api GET "$T?limit=2"
  expect 200
  [ "$(header X-Cache)" = miss ] || fail "a malformed entry was a $(header X-Cache): $BODY"
  [ "$BODY" = "$miss_body" ] || fail "after a malformed entry: $BODY"
  api GET "$T?limit=2"
  [ "$(header X-Cache)" = hit ] && [ "$BODY" = "$miss_body" ] || fail "not stored again: $(header X-Cache) $BODY"
done
pass "a malformed entry is read from Postgres and stored again"
