#!/usr/bin/env bash
# Email over SMTP to a real peer on loopback (tests/lib/smtp_sink.py): the
# welcome message arrives once, as a well-formed MIME message, and the
# delivery is recorded as sent; a recipient the server refuses (5xx) is
# recorded as failed and never retried. A fault test because the email
# queue is shared: only this run's servers may send while it runs.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

PORT=$(free_port)
SINK="$BH_TMP/sink"
smtp_sink_start "$PORT" "$SINK" --reject-rcpt refused-
SMTP_URL="smtp://127.0.0.1:$PORT" bh_start

new_user smtp
eventually 15 has_mail "$EMAIL" "$SINK" || fail "no message reached the SMTP server"
msg=$(mail_to "$EMAIL" "$SINK")
[ "$(grep -c . "${msg%.eml}.rcpt")" = 1 ] && grep -qxF "$EMAIL" "${msg%.eml}.rcpt" ||
  fail "envelope recipients: $(cat "${msg%.eml}.rcpt")"
[ "$(mail_header "$msg" Subject)" = "Welcome to Bulkhead, smtp User" ] ||
  fail "subject: $(mail_header "$msg" Subject)"
grep -qF "Your account $EMAIL is ready" <<<"$(mail_part "$msg" text/plain)" || fail "text part"
grep -qF "<strong>$EMAIL</strong>" <<<"$(mail_part "$msg" text/html)" || fail "html part"
row=$(as_role bh_notifications "SELECT status, transport, attempts, last_error IS NULL
    FROM notifications.deliveries WHERE to_address = '$EMAIL'")
[ "$row" = "sent|smtp|1|t" ] || fail "delivery row: $row"
pass "the welcome email goes over SMTP to the server on loopback, recorded as sent"

new_user refused
failed() {
    row=$(as_role bh_notifications "SELECT status, attempts FROM notifications.deliveries
        WHERE to_address = '$EMAIL'")
    [ "$row" = "failed|1" ]
}
eventually 15 failed || fail "refused recipient: $row"
error=$(as_role bh_notifications "SELECT last_error FROM notifications.deliveries
    WHERE to_address = '$EMAIL'")
grep -q "reply 550" <<<"$error" || fail "last_error: $error"
sleep 2
failed || fail "a refused email was retried: $row"
[ -z "$(mail_to "$EMAIL" "$SINK")" ] || fail "a refused message was stored"
pass "a recipient refused with 550 is recorded as failed and not retried"
