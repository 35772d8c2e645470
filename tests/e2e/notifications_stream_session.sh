#!/usr/bin/env bash
# A notification stream lasts no longer than the session that opened it: a
# logout, a logout-all or a password change ends it at the next heartbeat,
# and the token's exp ends it on time, each after an `event: reauthenticate`
# frame. One user holds at most NOTIFICATIONS_STREAMS_PER_USER streams (429
# with Retry-After past that), and a client that vanished frees its slot at
# the next heartbeat.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

HEARTBEAT_MS=1000
NOTIFICATIONS_STREAM_HEARTBEAT_MS=$HEARTBEAT_MS NOTIFICATIONS_STREAMS_PER_USER=2 bh_start
API=$BH_URL

# stream_open NAME TOKEN: reads TOKEN's stream into $BH_TMP/NAME.sse in the
# background; sets STREAM_PID once it is connected.
stream_open() {
    curl -sSN --max-time 60 -H "Authorization: Bearer $2" "$API/v1/me/notifications/stream" \
        >"$BH_TMP/$1.sse" 2>"$BH_TMP/$1.err" &
    STREAM_PID=$!
    BH_PIDS+=("$STREAM_PID")
    eventually 5 grep -q '^: connected' "$BH_TMP/$1.sse" || fail "stream $1 did not open"
}
# ended_within NAME PID MS REASON: the stream ends (curl exits) within MS
# milliseconds, after a reauthenticate frame with REASON. Sets ENDED_MS.
ended_within() {
    local t0 gone
    t0=$(date +%s%N)
    gone() { ! kill -0 "$1" 2>/dev/null; }
    eventually $((($3 + 999) / 1000 + 1)) gone "$2" || fail "stream $1 still open: $(cat "$BH_TMP/$1.sse")"
    ENDED_MS=$((($(date +%s%N) - t0) / 1000000))
    [ "$ENDED_MS" -le "$3" ] || fail "stream $1 ended after $ENDED_MS ms (bound $3 ms)"
    grep -q '^event: reauthenticate$' "$BH_TMP/$1.sse" &&
        grep -q "^data: {\"reason\":\"$4\"}$" "$BH_TMP/$1.sse" ||
        fail "stream $1 ended without telling why: $(cat "$BH_TMP/$1.sse")"
}
BOUND_MS=$((HEARTBEAT_MS + 1500)) # a heartbeat, plus a loaded machine's slack

new_user owner
OWNER=$TOKEN ORG=$ORG_ID
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member

# --- logout-all: the stream ends, and nothing assigned afterwards reaches it ----
stream_open all "$MEMBER"
pid=$STREAM_PID
TOKEN=$MEMBER api POST /v1/auth/logout-all
expect 204 "logout-all"
ended_within all "$pid" "$BOUND_MS" session_revoked
TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"After logout","assignee_id":"'"$MEMBER_ID"'"}'
expect 201
login "$MEMBER_EMAIL"
eventually 10 notif_has 1 task.assigned || fail "the assignment did not reach the inbox"
! grep -q 'After logout' "$BH_TMP/all.sse" || fail "a frame reached a revoked stream"
pass "logout-all ends an open stream in $ENDED_MS ms (heartbeat $HEARTBEAT_MS ms) with event: reauthenticate"

# --- logout of the stream's own session ----------------------------------------
login "$MEMBER_EMAIL"
stream_open one "$TOKEN"
pid=$STREAM_PID
api POST /v1/auth/logout
expect 204 "logout"
ended_within one "$pid" "$BOUND_MS" session_revoked
pass "logout ends the session's stream in $ENDED_MS ms"

# --- a password change ends the streams of the other sessions ------------------
login "$MEMBER_EMAIL"
OTHER=$TOKEN
login "$MEMBER_EMAIL"
stream_open pw "$OTHER"
pid=$STREAM_PID
api POST /v1/me/password "{\"current_password\":\"$BH_TEST_PASSWORD\",\"new_password\":\"another horse battery staple\"}"
[ "$STATUS" = 200 ] || [ "$STATUS" = 204 ] || fail "password change: $STATUS $BODY"
ended_within pw "$pid" "$BOUND_MS" session_revoked
BH_TEST_PASSWORD="another horse battery staple"
pass "a password change ends the other sessions' streams in $ENDED_MS ms"

# --- the token's exp ends the stream on time, heartbeat or not -------------------
FIRST=$BH_URL
NOTIFICATIONS_STREAM_HEARTBEAT_MS=600000 BULKHEAD_ACCESS_TOKEN_TTL_S=10 bh_start
API=$BH_URL
login "$MEMBER_EMAIL"
exp=$(python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["exp"])' "$TOKEN")
stream_open exp "$TOKEN"
pid=$STREAM_PID
gone() { ! kill -0 "$pid" 2>/dev/null; }
eventually 15 gone || fail "the stream outlived its token: $(cat "$BH_TMP/exp.sse")"
late=$(($(date +%s) - exp))
[ "$late" -le 1 ] || fail "the stream ended $late s after the token's exp"
grep -q '^data: {"reason":"token_expired"}$' "$BH_TMP/exp.sse" || fail "exp: $(cat "$BH_TMP/exp.sse")"
pass "a stream ends at its token's exp (${late}s after it), with a heartbeat ten minutes away"

# --- per-user cap, and a vanished client's slot freed at the next heartbeat -----
API=$FIRST BH_URL=$FIRST # the first server: heartbeat $HEARTBEAT_MS ms, two streams per user
login "$MEMBER_EMAIL"
stream_open cap1 "$TOKEN"
first=$STREAM_PID
stream_open cap2 "$TOKEN"
api GET /v1/me/notifications/stream '' --max-time 2
expect 429 "a third stream"
[ "$(jget .code)" = too_many_streams ] || fail "third stream: $BODY"
retry=$(header Retry-After)
[ -n "$retry" ] && [ "$retry" -ge 1 ] && [ "$retry" -le 3 ] || fail "Retry-After: '$retry'"
new_user stranger
stream_open cap3 "$TOKEN"
pass "a third stream of one user is a 429 too_many_streams (Retry-After: $retry); other users are not affected"

# The client vanishes (no goodbye) just after a heartbeat: its slot is free
# again at the next one, not the one after.
login "$MEMBER_EMAIL"
beats() { grep -c '^: heartbeat' "$BH_TMP/cap1.sse" || true; }
n=$(beats)
more_beats() { [ "$(beats)" -gt "$n" ]; }
eventually 5 more_beats || fail "no heartbeat on cap1"
kill -KILL "$first"
t0=$(date +%s%N)
slot_free() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.3 -H "Authorization: Bearer $TOKEN" \
        "$API/v1/me/notifications/stream" || true)" = 200 ]
}
eventually 5 slot_free || fail "the vanished client's slot was never freed"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -le $((HEARTBEAT_MS + 700)) ] || fail "the slot was freed after $ms ms (heartbeat $HEARTBEAT_MS ms)"
pass "a vanished client's slot is free again after $ms ms (heartbeat $HEARTBEAT_MS ms)"
