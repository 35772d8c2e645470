#!/usr/bin/env bash
# The SMTP server is down, then comes back: requests stay fast (email is a
# queued job, never done on a request thread), the job retries with backoff
# behind the circuit breaker, every attempt is recorded, and once the
# server is back the mail arrives exactly once.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

PORT=$(free_port) # nobody listens here yet
SINK="$BH_TMP/sink"
SMTP_URL="smtp://127.0.0.1:$PORT" NOTIFICATIONS_SMTP_BREAKER_COOLDOWN_MS=500 \
  BULKHEAD_JOBS_BACKOFF_MAX_MS=1500 bh_start

t0=$(date +%s%N)
new_user outage
signup_ms=$((($(date +%s%N) - t0) / 1000000))
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
    api GET /v1/me/notifications
    expect 200
done
api_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$signup_ms" -lt 3000 ] && [ "$api_ms" -lt 2000 ] ||
  fail "requests slowed down by the SMTP outage: signup $signup_ms ms, 5 calls $api_ms ms"
pass "with SMTP down, signup takes $signup_ms ms and 5 API calls $api_ms ms"

retrying() {
    row=$(as_role bh_notifications "SELECT status, attempts >= 3, last_error
        FROM notifications.deliveries WHERE to_address = '$EMAIL'")
    [[ "$row" == "pending|t|smtp: "* ]]
}
eventually 20 retrying || fail "the delivery is not being retried: $row"
breaker() { ops_curl -fsS "$BH_URL/metrics" | awk '$1 == "bulkhead_notifications_smtp_breaker_open" {print $2}'; }
[ "$(breaker)" = 1 ] || fail "the SMTP breaker is not open: $(breaker)"
pass "the email is retried with backoff, each failure recorded ($(cut -d'|' -f3 <<<"$row"))"

t0=$(date +%s%N)
smtp_sink_start "$PORT" "$SINK"
eventually 30 has_mail "$EMAIL" "$SINK" || fail "the mail did not arrive after the server came back"
back_ms=$((($(date +%s%N) - t0) / 1000000))
sleep 2
[ "$(mail_to "$EMAIL" "$SINK" | grep -c .)" = 1 ] || fail "the mail arrived more than once"
row=$(as_role bh_notifications "SELECT status, transport FROM notifications.deliveries
    WHERE to_address = '$EMAIL'")
[ "$row" = "sent|smtp" ] || fail "delivery after recovery: $row"
closed() { [ "$(breaker)" = 0 ]; }
eventually 5 closed || fail "the breaker did not close"
pass "once the SMTP server is back the mail arrives exactly once ($back_ms ms later)"
