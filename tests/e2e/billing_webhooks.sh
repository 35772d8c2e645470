#!/usr/bin/env bash
# Provider webhooks: `Billing-Signature: t=<unix>,v1=<HMAC-SHA256(secret,
# t.body)>` verified in constant time with a 300 s tolerance; a bad
# signature, a tampered body or a stale timestamp is 400; a redelivered event
# id is acknowledged without a second effect; events arriving out of order
# still leave the right state (a paid invoice never goes back to open).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

bh_start

# An open invoice to talk about: an upgrade declined by the card.
billing_owner hooks
billing_card tok_chargeDeclined
billing_put pro k-declined
expect 402 "declined upgrade"
INVOICE=$(jget .invoice_id)
NOW=$(date +%s)
event() { # ID TYPE CREATED
    printf '{"id":"%s","type":"%s","created":%s,"data":{"invoice_id":"%s","failure_code":"card_declined"}}' \
        "$1" "$2" "$3" "$INVOICE"
}
invoice() { api GET "/v1/orgs/$ORG_ID/invoices/$INVOICE"; expect 200 "get invoice"; }
U=$(date +%s%N)

# --- valid -------------------------------------------------------------------------
billing_webhook "$(event "evt_${U}_1" payment.failed $((NOW - 100)))"
expect 200 "a valid webhook"
[ "$(jget .received)" = true ] && [ "$(jget .duplicate)" = false ] || fail "ack: $BODY"
invoice
[ "$(jget .status)" = open ] && [ "$(jget .attempt_count)" = 2 ] || fail "after payment.failed: $BODY"
pass "a correctly signed payment.failed is applied: the attempt is recorded, the invoice stays open"

# --- duplicate ---------------------------------------------------------------------
billing_webhook "$(event "evt_${U}_1" payment.failed $((NOW - 100)))"
expect 200 "a redelivered webhook"
[ "$(jget .duplicate)" = true ] || fail "not flagged duplicate: $BODY"
invoice
[ "$(jget .attempt_count)" = 2 ] || fail "the duplicate had an effect: $BODY"
pass "a redelivered event id is 200 with no second effect"

# --- bad signatures -----------------------------------------------------------------
BODY_OK=$(event "evt_${U}_x" payment.succeeded "$NOW")
billing_webhook "$BODY_OK" "$NOW" "whsec_wrong_secret"
expect 400 "wrong secret"
[ "$(jget .code)" = webhook_signature_invalid ] || fail "code: $BODY"
api POST /v1/billing/webhooks/simulator "$BODY_OK"
expect 400 "no signature header"
api POST /v1/billing/webhooks/simulator "$BODY_OK" \
    -H "Billing-Signature: $(billing_sign "$(event "evt_${U}_y" payment.failed "$NOW")" "$NOW")"
expect 400 "signature of another body"
api POST /v1/billing/webhooks/simulator "$BODY_OK" -H "Billing-Signature: t=$NOW,v1=zz"
expect 400 "garbage signature"
invoice
[ "$(jget .status)" = open ] || fail "a forged event paid the invoice: $BODY"
pass "a wrong secret, a missing header, a signature of another body or garbage is 400 and changes nothing"

# --- stale -------------------------------------------------------------------------
billing_webhook "$BODY_OK" $((NOW - 301))
expect 400 "stale timestamp"
[ "$(jget .code)" = webhook_timestamp_stale ] || fail "code: $BODY"
billing_webhook "$BODY_OK" $((NOW + 400))
expect 400 "timestamp in the future"
invoice
[ "$(jget .status)" = open ] || fail "a stale event paid the invoice"
pass "a timestamp outside the 300 s tolerance is 400 webhook_timestamp_stale"

# --- out of order ---------------------------------------------------------------------
billing_webhook "$(event "evt_${U}_3" payment.succeeded "$NOW")"
expect 200 "payment.succeeded"
invoice
[ "$(jget .status)" = paid ] || fail "payment.succeeded did not pay: $BODY"
billing_sub
[ "$(jget .plan_id)" = pro ] && [ "$(jget .status)" = active ] ||
    fail "the paid upgrade was not applied: $BODY"
# An older failure delivered late must not undo the payment.
billing_webhook "$(event "evt_${U}_2" payment.failed $((NOW - 50)))"
expect 200 "a late, older payment.failed"
[ "$(jget .duplicate)" = false ] || fail "$BODY"
invoice
[ "$(jget .status)" = paid ] || fail "a late failure reopened a paid invoice: $BODY"
billing_sub
[ "$(jget .plan_id)" = pro ] && [ "$(jget .status)" = active ] || fail "state moved back: $BODY"
pass "out of order: succeeded then an older failed leaves the invoice paid and the upgrade applied"

# --- other edges ------------------------------------------------------------------------
billing_webhook '{"id":"evt_bad","type":"payment.succeeded"}'
expect 400 "signed but malformed payload"
[ "$(jget .code)" = webhook_payload_invalid ] || fail "code: $BODY"
billing_webhook "$(printf '{"id":"evt_%s_4","type":"customer.updated","created":%s}' "$U" "$NOW")"
expect 200 "an event type billing ignores"
T=$NOW
api POST /v1/billing/webhooks/stripe "$BODY_OK" -H "Billing-Signature: $(billing_sign "$BODY_OK" "$T")"
expect 404 "unknown provider"
pass "malformed payloads are 400, unknown event types are acknowledged, unknown providers 404"

billing_finish
