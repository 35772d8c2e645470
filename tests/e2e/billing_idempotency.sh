#!/usr/bin/env bash
# Idempotency keys on money-moving requests: a replay answers the stored
# response (Idempotent-Replayed: true) without a second charge, another body
# under the same key is 422, a key whose first request is still in flight is
# 409, a missing key is 400, keys are per organization and expire after 24 h;
# and 20 concurrent identical upgrades with one key charge exactly once.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

CLOCK="$BH_TMP/billing-clock"
echo 0 >"$CLOCK"
export BULKHEAD_BILLING_CLOCK_FILE=$CLOCK
# A short budget so the hanging test card answers quickly.
export BULKHEAD_BILLING_PROVIDER_TIMEOUT_MS=1500 BULKHEAD_BILLING_SIMULATOR_HANG_MS=3000
export BULKHEAD_BILLING_BREAKER_THRESHOLD=50
bh_start

charges() { billing_sql "SELECT count(*) FROM billing.payment_attempts WHERE org_id = '$1' AND outcome = 'succeeded'"; }

# --- 20 concurrent identical requests, one key: one charge ----------------------
billing_owner race
billing_card tok_visa
URL="$BH_URL/v1/orgs/$ORG_ID/subscription"
seq 1 20 | xargs -P 20 -I{} curl -sS -o "$BH_TMP/race-{}.json" -D "$BH_TMP/race-{}.hdr" \
    -w '%{http_code}\n' -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -H 'Idempotency-Key: race-1' \
    --data-binary '{"plan_id":"pro"}' "$URL" >"$BH_TMP/race-codes"
OK=$(grep -c '^200$' "$BH_TMP/race-codes" || true)
BUSY=$(grep -c '^409$' "$BH_TMP/race-codes" || true)
[ $((OK + BUSY)) = 20 ] || fail "statuses other than 200/409: $(sort "$BH_TMP/race-codes" | uniq -c | tr '\n' ' ')"
# A 200 without Idempotent-Replayed did the work. (Counted file by file: grep
# -L exits 1 when no file matches, which is the case when every other
# request was turned away in flight.)
FRESH=0
for f in "$BH_TMP"/race-*.hdr; do
    grep -q '^HTTP/1.1 200' "$f" || continue
    grep -qi '^Idempotent-Replayed: true' "$f" || FRESH=$((FRESH + 1))
done
[ "$FRESH" = 1 ] || fail "$FRESH responses did the work (expected exactly one)"
for f in "$BH_TMP"/race-*.json; do
    if jq -e '.code == "idempotency_request_in_progress"' "$f" >/dev/null; then continue; fi
    jq -e '.plan_id == "pro" and .invoice.number == 1' "$f" >/dev/null || fail "odd answer: $(cat "$f")"
done
[ "$(charges "$ORG_ID")" = 1 ] || fail "$(charges "$ORG_ID") charges for one key"
[ "$(billing_sql "SELECT count(*) FROM billing.invoices WHERE org_id = '$ORG_ID'")" = 1 ] ||
    fail "more than one invoice"
[ "$(billing_sql "SELECT count(*) FROM billing.idempotency_keys WHERE org_id = '$ORG_ID'")" = 1 ] ||
    fail "more than one key row"
pass "20 concurrent identical upgrades with one key: one charge, one invoice ($OK × 200, $BUSY × 409 in flight)"

# --- replay, reuse, missing ----------------------------------------------------------
billing_put pro race-1
expect 200 "replay after the race"
[ "$(header Idempotent-Replayed)" = true ] && [ "$(jget .invoice.number)" = 1 ] || fail "replay: $BODY"
[ "$(charges "$ORG_ID")" = 1 ] || fail "the replay charged"
pass "same key and body replays the stored response with Idempotent-Replayed: true"

billing_put business race-1
expect 422 "same key, other body"
[ "$(jget .code)" = idempotency_key_reused ] || fail "code: $BODY"
billing_sub
[ "$(jget .plan_id)" = pro ] || fail "the reused key changed the plan"
pass "same key with another body is 422 idempotency_key_reused and does nothing"

api PUT "/v1/orgs/$ORG_ID/subscription" '{"plan_id":"business"}'
expect 400 "missing key"
[ "$(jget .code)" = idempotency_key_required ] || fail "code: $BODY"
api DELETE "/v1/orgs/$ORG_ID/subscription"
expect 400 "DELETE without a key"
pass "a missing Idempotency-Key is 400 on PUT and DELETE"

# --- keys are per organization -----------------------------------------------------
OWNER1=$TOKEN ORG1=$ORG_ID
billing_owner scoped
billing_card tok_visa
billing_put pro race-1
expect 200 "the same key in another organization"
[ "$(header Idempotent-Replayed)" = "" ] && [ "$(jget .plan_id)" = pro ] || fail "scoped: $BODY"
[ "$(charges "$ORG_ID")" = 1 ] || fail "the other org was not charged"
pass "keys are scoped per organization"

# --- in flight → 409; an unknown outcome is an answer; a failure releases the key ---
billing_owner inflight
billing_card tok_timeout
(
    curl -sS -o "$BH_TMP/slow.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -H 'Idempotency-Key: slow-1' \
        --data-binary '{"plan_id":"pro"}' "$BH_URL/v1/orgs/$ORG_ID/subscription" >"$BH_TMP/slow.code"
) &
SLOW=$!
sleep 0.5
billing_put pro slow-1
expect 409 "same key while the first is in flight"
[ "$(jget .code)" = idempotency_request_in_progress ] || fail "code: $BODY"
wait $SLOW
[ "$(cat "$BH_TMP/slow.code")" = 202 ] || fail "the hanging charge answered $(cat "$BH_TMP/slow.code")"
billing_put pro slow-1
expect 202 "the same key after a charge of unknown outcome"
[ "$(header Idempotent-Replayed)" = true ] || fail "a charge of unknown outcome was not replayed"
[ "$(billing_sql "SELECT count(*) FROM billing.payment_attempts WHERE org_id = '$ORG_ID'")" = 1 ] ||
    fail "the retry charged again"
pass "a key in flight is 409; a provider timeout (202, outcome unknown) is stored and replayed"

billing_owner provider-error
billing_card tok_chargeDeclinedProcessingError
billing_put pro err-1
expect 503 "a provider error"
billing_card tok_visa
billing_put pro err-1
expect 200 "retry after a provider error with the same key"
[ "$(header Idempotent-Replayed)" = "" ] && [ "$(jget .plan_id)" = pro ] || fail "retry: $BODY"
pass "a provider error (503, nothing taken) releases the key so the retry does the work"

# --- keys expire after 24 h ------------------------------------------------------------
TOKEN=$OWNER1 ORG_ID=$ORG1
echo $((25 * 3600)) >"$CLOCK"
billing_put business race-1
[ "$STATUS" != 422 ] || fail "a 25-hour-old key was still enforced: $BODY"
[ "$(header Idempotent-Replayed)" = "" ] || fail "a 25-hour-old key replayed"
echo 0 >"$CLOCK"
pass "after 24 h a key is treated as new"

billing_finish
