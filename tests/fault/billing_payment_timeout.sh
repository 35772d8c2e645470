#!/usr/bin/env bash
# A charge the provider does not answer in time has an UNKNOWN outcome, not
# a failed one: the simulator's tok_timeout hangs past the caller's budget
# and then succeeds. The API answers 202 within its budget (the plan change
# pending, the invoice open, the attempt recorded as unknown); the
# reconciler then asks the provider by the charge's idempotency key and
# settles it exactly once: the subscription upgraded, the invoice paid, one
# attempt, one charge at the provider. A late payment.succeeded webhook for
# such a charge is honoured (it settles it), and the reconciler after it
# changes nothing. A renewal whose charge hangs is settled the same way
# (active, the renewal invoice paid), not sent to dunning.
# docs/adr/0004-payment-timeout-is-unknown.md.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

export BULKHEAD_BILLING_PROVIDER_TIMEOUT_MS=400 BULKHEAD_BILLING_SIMULATOR_HANG_MS=1500
export BULKHEAD_BILLING_RECONCILE_DELAY_MS=2000
CLOCK="$BH_TMP/billing-clock"
echo 0 >"$CLOCK"
export BULKHEAD_BILLING_CLOCK_FILE=$CLOCK
bh_start

ms() { date +%s%3N; }
# Charges the simulated provider took under an invoice's idempotency keys
# (its attempts' ids), from the simulator's own record in the server log.
charges() {
    local n=0 id
    for id in $(billing_sql "SELECT id FROM billing.payment_attempts WHERE invoice_id = '$1'"); do
        n=$((n + $(grep -c "charge ch_sim_[0-9a-f]* taken under idempotency key $id" "$BH_LOG" || true)))
    done
    echo "$n"
}
attempts() { # INVOICE: outcome/settled_by of each of its attempts
    billing_sql "SELECT string_agg(outcome || '/' || coalesce(settled_by, '-'), ',')
                   FROM billing.payment_attempts WHERE invoice_id = '$1'"
}
plan_is() { billing_sub && [ "$(jget .plan_id)" = "$1" ]; }

# --- the reconciler settles it -------------------------------------------------------
billing_owner timeout
billing_card tok_timeout
t0=$(ms)
billing_put pro unknown-1
took=$(($(ms) - t0))
expect 202 "an upgrade whose charge hangs"
[ "$took" -lt 1300 ] || fail "the caller waited ${took} ms for a 400 ms budget"
[ "$(jget .change)" = pending ] || fail "change: $BODY"
[ "$(jget .plan_id)" = free ] || fail "the plan moved before the charge settled: $BODY"
[ "$(jget .invoice.status)" = open ] || fail "the invoice of an unknown charge: $BODY"
INVOICE=$(jget .invoice.id)
[ "$(attempts "$INVOICE")" = unknown/- ] || fail "attempt: $(attempts "$INVOICE")"
pass "tok_timeout: 202 in ${took} ms (budget 400 ms), plan pending, invoice open, attempt unknown"

billing_put pro unknown-1
expect 202 "the same key again"
[ "$(header Idempotent-Replayed)" = true ] || fail "not a replay"
billing_put pro unknown-2
expect 409 "another key while the outcome is unknown"
[ "$(jget .code)" = payment_in_progress ] || fail "code: $BODY"
pass "the same key replays the 202; another key waits (409) instead of charging twice"

billing_wait_for plan_is pro || fail "the reconciler did not settle the upgrade: $BODY"
api GET "/v1/orgs/$ORG_ID/invoices/$INVOICE"
expect 200
[ "$(jget .status)" = paid ] || fail "invoice after reconciling: $BODY"
[ "$(jget .attempt_count)" = 1 ] || fail "attempt count: $BODY"
[ "$(attempts "$INVOICE")" = succeeded/reconciler ] || fail "attempts: $(attempts "$INVOICE")"
[ "$(charges "$INVOICE")" = 1 ] || fail "charges at the provider: $(charges "$INVOICE")"
pass "the reconciler settled it once: upgraded, invoice paid, one attempt, one charge"

BODY_EV='{"id":"evt_late_'$RANDOM$RANDOM'","type":"payment.succeeded","created":'$(date +%s)',"data":{"invoice_id":"'$INVOICE'"}}'
billing_webhook "$BODY_EV"
expect 200 "a late payment.succeeded"
[ "$(attempts "$INVOICE")" = succeeded/reconciler ] || fail "attempts: $(attempts "$INVOICE")"
[ "$(billing_sql "SELECT attempt_count FROM billing.invoices WHERE id = '$INVOICE'")" = 1 ] ||
    fail "the late webhook counted another attempt"
pass "a late webhook for the settled charge changes nothing"

# --- a webhook that comes first is honoured ---------------------------------------------
billing_owner webhook-first
billing_card tok_timeout
billing_put pro first-1
expect 202 "an upgrade whose charge hangs"
INVOICE=$(jget .invoice.id)
BODY_EV='{"id":"evt_first_'$RANDOM$RANDOM'","type":"payment.succeeded","created":'$(date +%s)',"data":{"invoice_id":"'$INVOICE'"}}'
billing_webhook "$BODY_EV"
expect 200 "payment.succeeded for the unknown charge"
plan_is pro || fail "the webhook did not apply the upgrade: $BODY"
[ "$(attempts "$INVOICE")" = succeeded/webhook ] || fail "attempts: $(attempts "$INVOICE")"
# The hanging charge completes at the provider (1.5 s) and the reconciler
# runs (2 s): it finds the attempt settled and writes nothing.
ATTEMPT=$(billing_sql "SELECT id FROM billing.payment_attempts WHERE invoice_id = '$INVOICE'")
billing_wait_for grep -q "attempt $ATTEMPT was settled already" "$BH_LOG" ||
    fail "the reconciler did not look at attempt $ATTEMPT"
plan_is pro || fail "after the reconciler: $BODY"
[ "$(attempts "$INVOICE")" = succeeded/webhook ] || fail "attempts: $(attempts "$INVOICE")"
api GET "/v1/orgs/$ORG_ID/invoices/$INVOICE"
[ "$(jget .status)/$(jget .attempt_count)" = paid/1 ] || fail "invoice: $BODY"
[ "$(charges "$INVOICE")" = 1 ] || fail "charges at the provider: $(charges "$INVOICE")"
pass "a webhook before the reconciler is honoured: upgraded once, one attempt, one charge"

# --- a renewal whose charge hangs ---------------------------------------------------------
billing_owner renewal-timeout
billing_card tok_visa
billing_put pro renew-up
expect 200 "upgrade with a good card"
billing_card tok_timeout
billing_sub
END=$(date -u -d "$(jget .current_period_end)" +%s)
echo $((END - $(date +%s) + 120)) >"$CLOCK"
api POST /_billing/sweep "{\"org_id\":\"$ORG_ID\"}"
expect 200 "the renewal run"
billing_sub
[ "$(jget .status)" = active ] || fail "a renewal of unknown outcome moved the status: $BODY"
billing_invoices
[ "$(jget '.data[0].reason')/$(jget '.data[0].status')" = renewal/open ] || fail "renewal invoice: $BODY"
INVOICE=$(jget '.data[0].id')
[ "$(attempts "$INVOICE")" = unknown/- ] || fail "attempt: $(attempts "$INVOICE")"
renewal_paid() { api GET "/v1/orgs/$ORG_ID/invoices/$INVOICE" && [ "$(jget .status)" = paid ]; }
billing_wait_for renewal_paid || fail "the reconciler did not settle the renewal: $BODY"
billing_sub
[ "$(jget .status)" = active ] && [ "$(jget .next_payment_retry_at)" = null ] || fail "after: $BODY"
[ "$(attempts "$INVOICE")" = succeeded/reconciler ] || fail "attempts: $(attempts "$INVOICE")"
[ "$(charges "$INVOICE")" = 1 ] || fail "charges at the provider: $(charges "$INVOICE")"
pass "a renewal whose charge hangs stays active, then the reconciler pays it once (no dunning)"

billing_finish
