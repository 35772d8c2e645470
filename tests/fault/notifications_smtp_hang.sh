#!/usr/bin/env bash
# An SMTP server that accepts connections and never answers: each send is
# cut off by its time budget, the circuit breaker opens after a few, and
# from then on sends are refused at once instead of each waiting out the
# timeout. API requests are never slowed (email is a queued job on its own
# worker pool).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

PORT=$(free_port)
smtp_sink_start "$PORT" "$BH_TMP/sink" --hang
SMTP_URL="smtp://127.0.0.1:$PORT" NOTIFICATIONS_SMTP_TIMEOUT_MS=800 \
  NOTIFICATIONS_SMTP_BREAKER_COOLDOWN_MS=60000 BULKHEAD_JOBS_BACKOFF_MAX_MS=300 bh_start

# A few users: their welcome emails keep the email workers busy.
for i in 1 2 3; do new_user "hang$i"; done
t0=$(date +%s%N)
for i in $(seq 1 10); do
    api GET /v1/me/notifications
    expect 200
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "10 API calls took $ms ms while email hangs"
pass "with the SMTP server hanging, 10 API calls take $ms ms"

breaker() { ops_curl -fsS "$BH_URL/metrics" | awk '$1 == "bulkhead_notifications_smtp_breaker_open" {print $2}'; }
open_now() { [ "$(breaker)" = 1 ]; }
eventually 20 open_now || fail "the breaker did not open"
refused() {
    [ "$(as_role bh_notifications "SELECT count(*) FROM notifications.deliveries
        WHERE to_address = '$EMAIL' AND last_error LIKE '%breaker open%'")" = 1 ]
}
eventually 10 refused || fail "sends are not refused while the breaker is open: $(as_role bh_notifications \
  "SELECT status, attempts, last_error FROM notifications.deliveries WHERE to_address = '$EMAIL'")"
count() { ops_curl -fsS "$BH_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# A send that was already waiting on the server when the breaker opened still
# runs out its 800 ms budget: let those finish before counting.
sleep 1
tried=$(count 'bulkhead_notifications_emails_total{transport="smtp",outcome="failed"}')
sleep 2
[ "$(count 'bulkhead_notifications_emails_total{transport="smtp",outcome="failed"}')" = "$tried" ] ||
  fail "the server is still being tried while the breaker is open"
pass "each send is cut off by its time budget; after $tried timed-out sends the breaker opens and refuses at once"
