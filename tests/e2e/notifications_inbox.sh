#!/usr/bin/env bash
# The in-app inbox and the preferences over HTTP: newest first with cursor
# pagination, the unread filter, marking one or all read, another user's
# notification is a 404, preferences are validated against the known types
# and channels, and email off means an inbox entry without an email.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

bh_start

new_user owner
OWNER=$TOKEN ORG=$ORG_ID
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member
for i in 1 2 3 4 5; do
    TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"Task '"$i"'","assignee_id":"'"$MEMBER_ID"'"}'
    expect 201
done
TOKEN=$MEMBER
# welcome + member.invited + member.added + 5 assignments
eventually 15 notif_has 5 task.assigned || fail "assignments did not arrive: $BODY"
eventually 5 notif_has 1 member.added || fail "member.added did not arrive"
eventually 5 notif_has 1 member.invited || fail "member.invited did not arrive"
[ "$(notif_count)" = 8 ] || fail "expected 8 notifications: $BODY"

# --- pages -------------------------------------------------------------------
ids=() cursor="" pages=0
while :; do
    api GET "/v1/me/notifications?limit=2${cursor:+&cursor=$cursor}"
    expect 200 "page $pages"
    pages=$((pages + 1))
    [ "$(jget '.data | length')" -le 2 ] || fail "a page is larger than the limit: $BODY"
    mapfile -t -O "${#ids[@]}" ids < <(jget '.data[].id')
    times=$(jget '[.data[].created_at] | (. == (sort | reverse))')
    [ "$times" = true ] || fail "page not newest first: $BODY"
    cursor=$(jget '.next_cursor // empty')
    link=$(header Link || true)
    [ "$link" = "${cursor:+</v1/me/notifications?limit=2&cursor=$cursor>; rel=\"next\"}" ] ||
        fail "page $pages: Link: $link"
    [ -n "$cursor" ] || break
done
[ "$pages" = 4 ] && [ "${#ids[@]}" = 8 ] || fail "$pages pages, ${#ids[@]} items"
[ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 8 ] || fail "an item appeared twice: ${ids[*]}"
api GET "/v1/me/notifications"
# The oldest three (welcome, invited to and added to the org) come from
# events of two aggregates, which workers may handle in either order.
[ "$(jget '.data[0].type')" = task.assigned ] &&
  [ "$(jget '[.data[-3:][].type] | sort | join(",")')" = member.added,member.invited,user.signed_up ] ||
  fail "not newest first: $BODY"
[ "$(jget '.data[0] | keys | sort | join(",")')" = "body,created_at,data,id,read_at,title,type" ] ||
  fail "notification shape: $(jget '.data[0]')"
pass "the inbox pages newest first with an opaque cursor and Link, and every item once"

for q in unread=maybe limit=0 limit=101 limit=x cursor=bogus "cursor=$(printf 'x|y' | base64)"; do
    api GET "/v1/me/notifications?$q"
    expect 422 "GET ?$q"
    [ "$(jget .code)" = validation_failed ] || fail "?$q: $BODY"
done
TOKEN= api GET /v1/me/notifications
expect 401 "no token"
pass "bad query parameters are 422 and no token is 401"

# --- read, read-all -----------------------------------------------------------
first=${ids[0]}
[ "$(notif_count unread=true)" = 8 ] || fail "unread before: $BODY"
api POST "/v1/me/notifications/$first/read"
expect 204 "mark one read"
api POST "/v1/me/notifications/$first/read"
expect 204 "mark it read again"
[ "$(notif_count unread=true)" = 7 ] || fail "unread after one read: $BODY"
api GET "/v1/me/notifications?limit=100"
[ "$(jq -r --arg id "$first" '.data[] | select(.id == $id) | .read_at' <<<"$BODY")" != null ] ||
  fail "read_at not set: $BODY"
pass "marking one notification read sets read_at and drops it from ?unread=true"

TOKEN=$OWNER api POST "/v1/me/notifications/$first/read"
expect 404 "another user's notification"
[ "$(notif_count unread=true)" = 7 ] || fail "another user marked it"
api POST "/v1/me/notifications/00000000-0000-0000-0000-000000000000/read"
expect 404 "no such notification"
api POST "/v1/me/notifications/not-a-uuid/read"
expect 404 "not a uuid"
api POST "/v1/me/notifications/$first/read" '{"extra":1}'
expect 422 "a body field the route does not take"
pass "another user's notification id is 404"

api POST /v1/me/notifications/read-all
expect 204 "read-all"
[ "$(header Notifications-Marked)" = 7 ] || fail "Notifications-Marked: $(header Notifications-Marked)"
api POST /v1/me/notifications/read-all
[ "$STATUS" = 204 ] && [ "$(header Notifications-Marked)" = 0 ] || fail "second read-all: $STATUS"
[ "$(notif_count unread=true)" = 0 ] || fail "unread after read-all: $BODY"
[ "$(notif_count)" = 8 ] || fail "read-all lost notifications: $BODY"
pass "read-all answers 204 with the count in Notifications-Marked"

# --- preferences --------------------------------------------------------------
api GET /v1/me/notification-preferences
expect 200
[ "$(jget '[.preferences[][]] | all')" = true ] || fail "defaults are not all on: $BODY"
[ "$(jget '.preferences | keys | length')" = 8 ] || fail "types: $BODY"
api PUT /v1/me/notification-preferences '{"preferences":{"task.assigned":{"email":false}}}'
expect 200 "PUT preferences"
[ "$(jget '.preferences["task.assigned"].email')" = false ] &&
  [ "$(jget '.preferences["task.assigned"].in_app')" = true ] &&
  [ "$(jget '.preferences["task.completed"].email')" = true ] || fail "after PUT: $BODY"
api GET /v1/me/notification-preferences
[ "$(jget '.preferences["task.assigned"].email')" = false ] || fail "PUT did not stick: $BODY"
pass "preferences default to on and PUT sets them per type and channel"

while IFS='|' read -r body field; do
    api PUT /v1/me/notification-preferences "$body"
    expect 422 "PUT $body"
    [ "$(jget '.errors[0].field')" = "$field" ] || fail "PUT $body: $BODY"
done <<'EOF'
{"preferences":{"task.exploded":{"email":false}}}|preferences.task.exploded
{"preferences":{"task.assigned":{"sms":false}}}|preferences.task.assigned.sms
{"preferences":{"task.assigned":{"email":"no"}}}|preferences.task.assigned.email
{"preferences":{"task.assigned":true}}|preferences.task.assigned
{"preferences":[]}|preferences
{}|preferences
{"preferences":{},"mute":true}|mute
EOF
api GET /v1/me/notification-preferences
[ "$(jget '.preferences["task.assigned"].email')" = false ] || fail "a refused PUT changed something"
pass "unknown types, unknown channels and non-booleans are 422 and change nothing"

# Email off for task.assigned: the next assignment is in the inbox only.
TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"Quiet task","assignee_id":"'"$MEMBER_ID"'"}'
expect 201
eventually 10 notif_has 6 task.assigned || fail "the sixth assignment did not arrive"
notif_count >/dev/null
quiet=$(jq -r '[.data[] | select(.title == "Task assigned to you: Quiet task")][0].id' <<<"$BODY")
[ "$quiet" != null ] || fail "no inbox entry for the quiet task: $BODY"
deliveries=$(as_role bh_notifications "SELECT count(*) FROM notifications.deliveries
    WHERE notification_id = '$quiet'")
[ "$deliveries" = 0 ] || fail "an email was queued although email is off"
for f in $(mail_to "$MEMBER_EMAIL"); do
    [ "$(mail_header "$f" Subject)" != "Task assigned to you: Quiet task" ] || fail "mail sent: $f"
done
pass "with email off for task.assigned, an assignment is in the inbox and not emailed"

# Preferences are per user: the owner still has the defaults.
TOKEN=$OWNER api GET /v1/me/notification-preferences
[ "$(jget '[.preferences[][]] | all')" = true ] || fail "another user's preferences changed: $BODY"
pass "preferences are per user"

# Every notifications route is described in docs/openapi.yaml (as served).
api GET /openapi.json
expect 200
routes=$("$BH_BIN" routes | awk '$NF == "notifications" {print $1, $2}')
[ "$(grep -c . <<<"$routes")" = 6 ] || fail "notifications routes: $routes"
while read -r method path; do
    jq -e --arg m "${method,,}" --arg p "$(sed 's/{[^}]*}/{}/g' <<<"$path")" \
      '[.paths | to_entries[] | select((.key | gsub("{[^}]*}"; "{}")) == $p and (.value | has($m)))]
       | length == 1' <<<"$BODY" >/dev/null || fail "$method $path is not in docs/openapi.yaml"
done <<<"$routes"
pass "every notifications route is in the OpenAPI description"
