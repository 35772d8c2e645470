#!/usr/bin/env bash
# The live stream when its Redis connection goes away. If the subscriber
# connection is dropped, open streams are ended (they may have missed a
# push), the subscriber reconnects, and a client resuming with
# Last-Event-ID gets what was made meanwhile, then live pushes again. With
# Redis stopped, a new stream still opens at once (degraded: no live
# pushes) and the API answers; once Redis is back, that stream is ended too
# so that its client resumes. Nothing is a 5xx.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"
: "${BH_DEVENV_DIR:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
restore() { "$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1 || true; }
bh_on_exit restore
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }

NOTIFICATIONS_STREAM_HEARTBEAT_MS=500 bh_start

new_user owner
OWNER=$TOKEN ORG=$ORG_ID
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member

stream_open() { # NAME [curl args]: $MEMBER's stream into $BH_TMP/NAME.sse; sets STREAM_PID
    local name=$1
    shift
    curl -sSN --max-time 60 -H "Authorization: Bearer $MEMBER" "$@" \
        "$BH_URL/v1/me/notifications/stream" >"$BH_TMP/$name.sse" 2>/dev/null &
    STREAM_PID=$!
    BH_PIDS+=("$STREAM_PID")
    eventually 5 grep -q '^: connected' "$BH_TMP/$name.sse" || fail "stream $name did not open"
}
frames() { sed -n 's/^data: //p' "$BH_TMP/$1.sse"; }
has_frames() { [ "$(frames "$1" | grep -c .)" -ge "$2" ]; }
ended() { ! kill -0 "$1" 2>/dev/null; }
subscriber_up() {
    [ "$(ops_curl -fsS "$BH_URL/metrics" | awk '$1 == "bulkhead_notifications_stream_subscriber_up" {print $2}')" = 1 ]
}
assign() {
    TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"'"$1"'","assignee_id":"'"$MEMBER_ID"'"}'
    expect 201 "create $1"
}

# --- the subscriber connection is dropped ---------------------------------------
stream_open first
assign "Before the drop"
# The member.added notification may still be on its way: wait for this one.
eventually 10 grep -q 'Before the drop' "$BH_TMP/first.sse" || fail "no live frame"
last=$(sed -n 's/^id: //p' "$BH_TMP/first.sse" | tail -1)
rcli CLIENT KILL USER notifications >/dev/null
eventually 10 ended "$STREAM_PID" || fail "the open stream was not ended when its subscriber dropped"
assign "While it was down"
TOKEN=$MEMBER eventually 10 notif_has 2 task.assigned || fail "the notification was not made"
eventually 10 subscriber_up || fail "the subscriber did not reconnect"
stream_open resumed -H "Last-Event-ID: $last"
eventually 5 has_frames resumed 1 || fail "resume: $(cat "$BH_TMP/resumed.sse")"
[ "$(frames resumed | jq -r .title)" = "Task assigned to you: While it was down" ] ||
  fail "resumed: $(frames resumed)"
assign "After the resume"
eventually 10 has_frames resumed 2 || fail "no live frame after the subscriber reconnected"
pass "a dropped subscriber ends open streams; Last-Event-ID replays the gap and live pushes resume"

# --- Redis stopped ------------------------------------------------------------
"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
eventually 10 ended "$STREAM_PID" || fail "the open stream was not ended when Redis stopped"
t0=$(date +%s%N)
stream_open during
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "opening a stream with Redis down took $ms ms"
TOKEN=$MEMBER api GET /v1/me/notifications
expect 200 "the inbox with Redis down"
pass "with Redis stopped a stream still opens ($ms ms) and the inbox answers"

subscriber_up && fail "the subscriber claims to be up with Redis stopped"
restore
eventually 10 ended "$STREAM_PID" || fail "the stream opened during the outage was not ended"
eventually 10 subscriber_up || fail "the subscriber did not reconnect to the restarted Redis"
kill -0 "$BH_PID" || fail "the server died"
api GET /health/live
expect 200
pass "once Redis is back, the stream opened during the outage is ended so that it resumes"
