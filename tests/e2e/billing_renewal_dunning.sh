#!/usr/bin/env bash
# Renewals and dunning on billing's simulated clock (dev only: the offset in
# BULKHEAD_BILLING_CLOCK_FILE, then POST /_billing/sweep for one org): at the
# period end a good card renews (invoice paid, new period), a scheduled
# downgrade applies, a cancellation ends the subscription; a declined card
# goes past_due and is retried after 1, 3 and 7 days, then canceled with the
# free plan's limits; a new card collects at once (through the renewal job).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

CLOCK="$BH_TMP/billing-clock"
echo 0 >"$CLOCK"
export BULKHEAD_BILLING_CLOCK_FILE=$CLOCK
bh_start

DAY=86400
declare -A TOK ORGOF
# on_pro LABEL: an owner with a good card, upgraded to pro now.
on_pro() {
    billing_owner "$1"
    TOK[$1]=$TOKEN ORGOF[$1]=$ORG_ID
    billing_card tok_visa
    billing_put pro "up-$1"
    expect 200 "upgrade $1"
}
as() { TOKEN=${TOK[$1]} ORG_ID=${ORGOF[$1]}; }
sweep() {
    as "$1"
    api POST /_billing/sweep "{\"org_id\":\"$ORG_ID\"}"
    expect 200 "sweep $1"
}
epoch() { date -u -d "$1" +%s; }

for who in renews dunned recovers downgrades cancels crowded; do on_pro "$who"; done
as dunned; billing_card tok_chargeDeclined
as recovers; billing_card tok_chargeDeclined
as downgrades; billing_put free down-1; expect 200
as cancels; billing_cancel cancel-1; expect 200
# A downgrade scheduled within the seat limit, then members added past every
# check (straight into the database): the renewal finds the organization
# over the new plan's limit.
as crowded; billing_put free down-2; expect 200
billing_sql "INSERT INTO auth.users (id, email, name, password_hash)
               SELECT gen_random_uuid(), 'crowd' || g || '-$ORG_ID@e.test', 'Crowd', 'x'
                 FROM generate_series(1, 4) g;
             INSERT INTO auth.members (org_id, user_id, role)
               SELECT '$ORG_ID', id, 'member' FROM auth.users
                WHERE email LIKE 'crowd_-$ORG_ID@e.test'" >/dev/null

# Move every period end into the past: a month and a bit.
as renews; billing_sub
END1=$(epoch "$(jget .current_period_end)")
M=$((END1 - $(date +%s) + 120))
echo "$M" >"$CLOCK"
for who in renews dunned recovers downgrades cancels crowded; do sweep "$who"; done

# --- a good card renews ------------------------------------------------------------------
as renews; billing_sub
[ "$(jget .status)" = active ] && [ "$(epoch "$(jget .current_period_start)")" = "$END1" ] ||
    fail "renewed period: $BODY"
billing_invoices
[ "$(jget '.data[0].number')" = 2 ] && [ "$(jget '.data[0].reason')" = renewal ] &&
    [ "$(jget '.data[0].status')" = paid ] && [ "$(jget '.data[0].total_cents')" = 1200 ] ||
    fail "renewal invoice: $BODY"
sweep renews
[ "$(jget .processed)" = 0 ] || fail "a second sweep renewed again: $BODY"
billing_invoices
[ "$(jget '.data | length')" = 2 ] || fail "a second renewal invoice appeared"
pass "at the period end a good card renews: invoice 2 paid (1200 cents), the next period starts; a rerun does nothing"

# --- scheduled downgrade and cancellation apply -----------------------------------------
as downgrades; billing_sub
[ "$(jget .plan_id)" = free ] && [ "$(jget .status)" = active ] && [ "$(jget .pending_plan_id)" = null ] ||
    fail "downgrade at period end: $BODY"
billing_invoices
[ "$(jget '.data | length')" = 1 ] || fail "a downgrade to free invoiced: $BODY"
as cancels; billing_sub
[ "$(jget .status)" = canceled ] || fail "cancel at period end: $BODY"
api GET "/v1/orgs/$ORG_ID/usage"
[ "$(jget .tasks.limit)" = 50 ] && [ "$(jget .members.limit)" = 3 ] || fail "canceled limits: $BODY"
pass "a scheduled downgrade moves to free at the period end; a cancellation ends it (free limits)"

as crowded; billing_sub
[ "$(jget .plan_id)" = free ] && [ "$(jget .pending_plan_id)" = null ] || fail "crowded downgrade: $BODY"
[ "$(billing_sql "SELECT payload->'data'->>'reason' FROM platform.outbox
    WHERE payload->>'type' = 'subscription.changed' AND payload->>'org_id' = '$ORG_ID'
    ORDER BY seq DESC LIMIT 1")" = downgraded_over_seat_limit ] || fail "no downgraded_over_seat_limit"
api GET "/v1/orgs/$ORG_ID/usage"
[ "$(jget .members.limit)" = 3 ] || fail "limits after a crowded downgrade: $BODY"
pass "a renewal re-checks a scheduled downgrade's seats: applied, members kept, said in the event"

# --- a declined renewal goes past_due ---------------------------------------------------
as dunned; billing_sub
[ "$(jget .status)" = past_due ] || fail "declined renewal: $BODY"
RETRY1=$(epoch "$(jget .next_payment_retry_at)")
billing_invoices
DUNNED_INVOICE=$(jget '.data[0].id')
[ "$(jget '.data[0].status')" = open ] && [ "$(jget '.data[0].attempt_count')" = 1 ] || fail "open invoice: $BODY"
CREATED=$(epoch "$(jget '.data[0].created_at')")
[ "$RETRY1" = $((CREATED + DAY)) ] || fail "first retry at $RETRY1, expected $((CREATED + DAY))"
api GET "/v1/orgs/$ORG_ID/usage"
[ "$(jget .tasks.limit)" = 5000 ] || fail "past_due keeps the plan's limits during dunning: $BODY"
sweep dunned
api GET "/v1/orgs/$ORG_ID/invoices/$DUNNED_INVOICE"
[ "$(jget .attempt_count)" = 1 ] || fail "a sweep before the retry date charged again"
pass "a declined renewal is past_due, invoice open, first retry one day later; nothing happens before it"

# --- retries at +1 d, +3 d, +7 d, then canceled ----------------------------------------
for n in 2 3; do
    days=$([ $n = 2 ] && echo 1 || echo 3)
    echo $((M + days * DAY)) >"$CLOCK"
    sweep dunned
    api GET "/v1/orgs/$ORG_ID/invoices/$DUNNED_INVOICE"
    [ "$(jget .attempt_count)" = "$n" ] && [ "$(jget .status)" = open ] || fail "retry $n: $BODY"
    billing_sub
    [ "$(jget .status)" = past_due ] || fail "after retry $n: $BODY"
done
[ "$(epoch "$(jget .next_payment_retry_at)")" = $((CREATED + 7 * DAY)) ] || fail "last retry date: $BODY"
echo $((M + 7 * DAY)) >"$CLOCK"
sweep dunned
billing_sub
[ "$(jget .status)" = canceled ] && [ "$(jget .next_payment_retry_at)" = null ] || fail "dunning end: $BODY"
api GET "/v1/orgs/$ORG_ID/invoices/$DUNNED_INVOICE"
[ "$(jget .status)" = void ] && [ "$(jget .attempt_count)" = 4 ] || fail "written off: $BODY"
api GET "/v1/orgs/$ORG_ID/usage"
[ "$(jget .tasks.limit)" = 50 ] || fail "entitlements after cancellation: $BODY"
FAILED=$(billing_sql "SELECT string_agg(payload->'data'->>'attempt', ',' ORDER BY seq) FROM platform.outbox
    WHERE payload->>'type' = 'invoice.payment_failed' AND payload->'data'->>'invoice_id' = '$DUNNED_INVOICE'")
[ "$FAILED" = "1,2,3,4" ] || fail "invoice.payment_failed attempts: $FAILED"
[ "$(billing_sql "SELECT payload->'data'->>'status' FROM platform.outbox WHERE payload->>'type' = 'subscription.changed'
    AND payload->>'org_id' = '$ORG_ID' ORDER BY seq DESC LIMIT 1")" = canceled ] || fail "no subscription.changed canceled"
pass "retries at +1 d, +3 d and +7 d; when they run out the subscription is canceled, the invoice void, limits free"

# --- a new card collects at once, through the renewal job -------------------------------
as recovers; billing_sub
[ "$(jget .status)" = past_due ] || fail "recovers: $BODY"
billing_card tok_visa
recovered() { api GET "/v1/orgs/$ORG_ID/subscription" && [ "$(jget .status)" = active ]; }
billing_wait_for recovered || fail "the new card was not charged: $BODY"
billing_invoices
[ "$(jget '.data[0].status')" = paid ] && [ "$(jget '.data[0].reason')" = renewal ] || fail "recovered invoice: $BODY"
pass "a new card while past_due is charged at once by the renewal job, and the subscription is active again"

echo 0 >"$CLOCK"
billing_finish
