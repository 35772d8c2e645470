#!/usr/bin/env bash
# The live stream (server-sent events) read with curl: a notification made
# by a worker anywhere reaches a stream held by another API process within
# a second (Redis pub/sub fan-out), heartbeats keep it alive, Last-Event-ID
# resumes from the inbox, and open or vanished streams hold no request
# thread.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

# API 1 runs the workers; API 2 only serves HTTP (and holds the streams),
# with two server threads and a fast heartbeat.
bh_start
API1=$BH_URL
NOTIFICATIONS_STREAM_HEARTBEAT_MS=300 NOTIFICATIONS_STREAMS_PER_USER=20 BULKHEAD_HTTP_THREADS=2 \
    bh_start serve --no-workers
API2=$BH_URL

BH_URL=$API1
new_user owner
OWNER=$TOKEN ORG=$ORG_ID
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member
TOKEN=$MEMBER eventually 10 notif_has 1 member.added || fail "member.added did not arrive"

# stream_open NAME [curl args...]: reads $MEMBER's stream from API 2 into
# $BH_TMP/NAME.sse in the background; sets STREAM_PID.
stream_open() {
    local name=$1
    shift
    curl -sSN --max-time 60 -H "Authorization: Bearer $MEMBER" "$@" \
        "$API2/v1/me/notifications/stream" >"$BH_TMP/$name.sse" 2>"$BH_TMP/$name.err" &
    STREAM_PID=$!
    BH_PIDS+=("$STREAM_PID")
    eventually 5 grep -q '^: connected' "$BH_TMP/$name.sse" || fail "stream $name did not open"
}
# frames NAME: the stream's notifications as JSON, one per line.
frames() { sed -n 's/^data: //p' "$BH_TMP/$1.sse"; }
ids() { sed -n 's/^id: //p' "$BH_TMP/$1.sse"; }
count_frames() { [ "$(frames "$1" | grep -c .)" -ge "$2" ]; }

# --- live: a task assigned while the stream is open --------------------------
stream_open live
curl -sS -D "$BH_TMP/live.headers" -o /dev/null --max-time 1 -H "Authorization: Bearer $MEMBER" \
    "$API2/v1/me/notifications/stream" || true
grep -qi '^content-type: text/event-stream' "$BH_TMP/live.headers" ||
  fail "stream headers: $(cat "$BH_TMP/live.headers")"
t0=$(date +%s%N)
BH_URL=$API1 TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" \
  '{"title":"Live one","assignee_id":"'"$MEMBER_ID"'"}'
expect 201
TASK=$(jget .id)
eventually 5 count_frames live 1 || fail "no frame on the stream: $(cat "$BH_TMP/live.sse")"
ms=$((($(date +%s%N) - t0) / 1000000))
frame=$(frames live | head -1)
jq -e --arg t "$TASK" '.type == "task.assigned" and .data.task_id == $t and
    .title == "Task assigned to you: Live one" and .read_at == null' <<<"$frame" >/dev/null ||
  fail "frame: $frame"
[ "$(ids live | head -1)" = "$(jq -r .id <<<"$frame")" ] || fail "the SSE id is not the notification id"
grep -q '^event: notification$' "$BH_TMP/live.sse" || fail "no event: line"
[ "$ms" -lt 1500 ] || fail "the push took $ms ms"
pass "a task assigned while the stream is open is pushed to another API process in $ms ms"

# The same notification is the newest in the inbox.
BH_URL=$API1 TOKEN=$MEMBER api GET /v1/me/notifications?limit=1
[ "$(jget '.data[0].id')" = "$(ids live | head -1)" ] || fail "stream and inbox differ"

eventually 3 grep -q '^: heartbeat' "$BH_TMP/live.sse" || fail "no heartbeat"
pass "heartbeats are comment lines"

# --- resume with Last-Event-ID -------------------------------------------------
kill "$STREAM_PID"
last=$(ids live | tail -1)
# Events of two tasks are handled in parallel, so each waits for its
# notification: the replay's order is the order the notifications were made.
n=1
for t in "Missed one" "Missed two"; do
    BH_URL=$API1 TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" \
      '{"title":"'"$t"'","assignee_id":"'"$MEMBER_ID"'"}'
    expect 201
    n=$((n + 1))
    BH_URL=$API1 TOKEN=$MEMBER eventually 10 notif_has $n task.assigned || fail "\"$t\" did not arrive"
done
stream_open resume -H "Last-Event-ID: $last"
eventually 5 count_frames resume 2 || fail "resume: $(cat "$BH_TMP/resume.sse")"
[ "$(frames resume | jq -r .title | paste -sd'|' -)" = \
  "Task assigned to you: Missed one|Task assigned to you: Missed two" ] ||
  fail "resume replays: $(frames resume | jq -r .title)"
BH_URL=$API1 TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" \
  '{"title":"After resume","assignee_id":"'"$MEMBER_ID"'"}'
eventually 5 count_frames resume 3 || fail "no live frame after the replay"
[ "$(frames resume | tail -1 | jq -r .title)" = "Task assigned to you: After resume" ] ||
  fail "after resume: $(frames resume | tail -1)"
[ "$(ids resume | sort | uniq -d)" = "" ] || fail "a frame came twice"
kill "$STREAM_PID"
pass "Last-Event-ID replays what was missed, oldest first, then goes live"

# A client that missed more than the replay holds gets the newest ones, so
# there is no hole between the replay and the live frames.
as_role bh_notifications "INSERT INTO notifications.notifications
    (id, user_id, type, title, body, event_id, created_at)
    SELECT gen_random_uuid(), '$MEMBER_ID', 'task.assigned', 'Bulk ' || i, 'bulk', gen_random_uuid(),
           now() + i * interval '1 millisecond'
    FROM generate_series(1, 150) AS i" >/dev/null
stream_open many -H "Last-Event-ID: $(ids resume | tail -1)"
eventually 5 count_frames many 100 || fail "replay of many: $(frames many | grep -c .) frames"
sleep 0.3
[ "$(frames many | grep -c .)" = 100 ] || fail "the replay is not capped at 100"
[ "$(frames many | head -1 | jq -r .title)" = "Bulk 51" ] &&
  [ "$(frames many | tail -1 | jq -r .title)" = "Bulk 150" ] ||
  fail "replay range: $(frames many | head -1 | jq -r .title) .. $(frames many | tail -1 | jq -r .title)"
grep -q '^: replay holds the newest 100' "$BH_TMP/many.sse" || fail "no note about the cap"
kill "$STREAM_PID"
pass "a replay past 100 sends the newest 100, oldest first, with a note"

# --- errors ---------------------------------------------------------------------
BH_URL=$API2 TOKEN= api GET /v1/me/notifications/stream
expect 401 "stream without a token"
BH_URL=$API2 TOKEN=$MEMBER api GET /v1/me/notifications/stream '' -H 'Last-Event-ID: nope'
expect 422 "a bad Last-Event-ID"
pass "the stream needs a token and a valid Last-Event-ID"

# --- open and vanished streams hold no thread -------------------------------------
# API 2 has two server threads; ten open streams must not block it.
pids=()
for i in $(seq 1 10); do
    stream_open "many$i"
    pids+=("$STREAM_PID")
done
t0=$(date +%s%N)
for i in 1 2 3; do
    BH_URL=$API2 TOKEN=$MEMBER api GET /v1/me/notifications?limit=1
    expect 200 "an API call while ten streams are open"
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "three API calls took $ms ms next to ten streams"
open_streams() { ops_curl -fsS "$API2/metrics" | awk '$1 == "bulkhead_notifications_streams" {print $2}'; }
[ "$(open_streams)" -ge 10 ] || fail "streams gauge: $(open_streams)"
# Clients that vanish (killed, no goodbye) are noticed at the next write.
kill -KILL "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null || true
no_streams() { [ "$(open_streams)" = 0 ]; }
eventually 10 no_streams || fail "vanished clients still count: $(open_streams)"
pass "ten open streams leave a two-thread server responsive (3 calls in $ms ms); vanished clients are dropped"
