#!/usr/bin/env bash
# The payment provider goes down (its calls hang past the time budget): each
# call gives up at the budget (202: the outcome is unknown, settled later),
# and after three failures the breaker opens, so
# plan changes fail fast with 503 + Retry-After and write nothing, while
# reads keep working; after the cool-down one trial call closes it again.
# A provider error (not a hang) is a 503 too, with the invoice voided.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

export BULKHEAD_BILLING_PROVIDER_TIMEOUT_MS=400 BULKHEAD_BILLING_SIMULATOR_HANG_MS=1500
export BULKHEAD_BILLING_BREAKER_THRESHOLD=3 BULKHEAD_BILLING_BREAKER_COOLDOWN_MS=5000
# No workers: a reconcile job another test left in the shared queue would ask
# the provider about its charge, and that answer (a success) would close the
# breaker this test is counting on.
bh_start serve --no-workers

ms() { date +%s%3N; }

# An owner for later, made now: signing up hashes a password, which is slow
# enough under the sanitizers to outlast the breaker's open window.
billing_owner healthy
OK_TOKEN=$TOKEN OK_ORG=$ORG_ID

# --- the time budget -------------------------------------------------------------
# Three organizations whose cards hang: each charge gives up at the budget
# and answers 202 (outcome unknown: tests/fault/billing_payment_timeout.sh
# follows one to its end); three timeouts in a row open the breaker.
for i in 1 2 3; do
    billing_owner "hangs-$i"
    billing_card tok_timeout
    HANG_TOKENS[$i]=$TOKEN HANG_ORGS[$i]=$ORG_ID
done
for i in 1 2 3; do
    TOKEN=${HANG_TOKENS[$i]} ORG_ID=${HANG_ORGS[$i]}
    t0=$(ms)
    billing_put pro "hang-$i"
    took=$(($(ms) - t0))
    expect 202 "charge that hangs ($i)"
    [ "$(jget .change)" = pending ] || fail "change: $BODY"
    [ "$(jget .plan_id)" = free ] || fail "the plan moved before the charge settled: $BODY"
    [ "$(jget .invoice.status)" = open ] || fail "invoice of an unknown charge: $BODY"
    [ "$took" -lt 1300 ] || fail "the caller waited ${took} ms for a 400 ms budget"
done
pass "a hanging provider costs the 400 ms budget and answers 202, the invoice open"

# --- open: fail fast, write nothing ----------------------------------------------------
t0=$(ms)
billing_put pro fast-1
took=$(($(ms) - t0))
expect 503 "upgrade while the breaker is open"
[ "$took" -lt 300 ] || fail "an open breaker still took ${took} ms"
RETRY=$(header Retry-After)
[ "$RETRY" -ge 1 ] && [ "$RETRY" -le 5 ] || fail "Retry-After $RETRY"
ops_curl -fsS "$BH_URL/metrics" >"$BH_TMP/metrics"
grep -q '^bulkhead_billing_provider_breaker_state{state="open"} 1' "$BH_TMP/metrics" ||
    fail "/metrics does not show the open breaker"
billing_invoices
[ "$(jget '.data | length')" = 1 ] || fail "the refused upgrade wrote an invoice: $BODY"
[ "$(billing_sql "SELECT count(*) FROM billing.payment_attempts WHERE org_id = '$ORG_ID'")" = 1 ] ||
    fail "the refused upgrade recorded an attempt"
TOKEN=$OK_TOKEN api POST "/v1/orgs/$OK_ORG/payment-method" '{"token":"tok_visa"}'
expect 503 "storing a card while the breaker is open"
pass "while the breaker is open, plan changes fail in ${took} ms with 503 + Retry-After $RETRY and write nothing"

TOKEN= api GET /v1/plans
expect 200 "plans while the provider is down"
billing_sub
billing_invoices
api GET "/v1/orgs/$ORG_ID/usage"
expect 200
pass "reads keep working while the provider is down"

# --- half-open → closed -------------------------------------------------------------------
sleep 5.2
TOKEN=$OK_TOKEN ORG_ID=$OK_ORG
billing_card tok_visa
billing_put pro recover-1
expect 200 "upgrade after the cool-down"
[ "$(jget .plan_id)" = pro ] || fail "after recovery: $BODY"
pass "after the cool-down a trial call goes through and closes the breaker"

# --- a provider error ---------------------------------------------------------------------
billing_owner errors
billing_card tok_chargeDeclinedProcessingError
billing_put pro err-1
expect 503 "provider error"
billing_sub
[ "$(jget .plan_id)" = free ] || fail "plan changed on a provider error"
billing_invoices
[ "$(jget '.data[0].status')" = void ] || fail "invoice after provider error: $BODY"
pass "a provider error is 503 and leaves the plan unchanged, the invoice void"

billing_finish
