#!/usr/bin/env bash
# A subscription's life over HTTP: the public plan catalogue, free → pro with
# a good card (prorated invoice, paid), a declined upgrade (402, plan kept,
# invoice left open), a downgrade refused while members exceed the new limit
# and then scheduled for the period end, and a cancellation at period end.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

bh_start

# --- the catalogue is public ------------------------------------------------
TOKEN= api GET /v1/plans
expect 200 "list plans"
[ "$(jget '[.data[].id] | join(",")')" = "free,pro,business" ] || fail "plans: $BODY"
[ "$(jget '.data[1] | "\(.price_cents) \(.currency) \(.interval) \(.trial_days) \(.limits.tasks) \(.limits.members)"')" = "1200 USD month 14 5000 25" ] ||
    fail "pro plan: $BODY"
[ "$(jget '.data[0].limits.members')" = 3 ] && [ "$(jget '.data[2].limits.tasks')" = null ] ||
    fail "limits: $BODY"
pass "GET /v1/plans lists free, pro and business with integer-cent prices and limits, no auth"

# --- every organization starts on free ---------------------------------------
billing_owner owner
OWNER=$TOKEN ORG=$ORG_ID
billing_sub
[ "$(jget .plan_id)" = free ] && [ "$(jget .status)" = active ] &&
    [ "$(jget .cancel_at_period_end)" = false ] || fail "new org subscription: $BODY"
PERIOD_END=$(jget .current_period_end)
pass "a new organization has an active free subscription"

api GET "/v1/orgs/$ORG/usage"
expect 200
[ "$(jget .tasks.limit)" = 50 ] && [ "$(jget .members.limit)" = 3 ] || fail "usage: $BODY"
members_counted() { api GET "/v1/orgs/$ORG/usage" && [ "$(jget .members.used)" = 1 ]; }
billing_wait_for members_counted || fail "the owner was never counted: $BODY"
pass "usage counts the owner (from events) against the free limits"

# --- upgrades need a key and a card ------------------------------------------
api PUT "/v1/orgs/$ORG/subscription" '{"plan_id":"pro"}'
expect 400 "upgrade without Idempotency-Key"
[ "$(jget .code)" = idempotency_key_required ] || fail "code: $BODY"
billing_put platinum k-unknown
expect 422 "unknown plan"
[ "$(jget .code)" = unknown_plan ] || fail "code: $BODY"
billing_put pro k-nocard
expect 402 "upgrade without a card"
[ "$(jget .code)" = payment_method_required ] || fail "code: $BODY"
api POST "/v1/orgs/$ORG/payment-method" '{"token":"tok_nonsense"}'
expect 422 "unusable token"
api POST "/v1/orgs/$ORG/payment-method" '{"token":"tok_visa","extra":1}'
expect 422 "unknown field"
pass "an upgrade needs an Idempotency-Key, a known plan and a card; bad tokens are 422"

billing_card tok_visa
[ "$(jget .brand)" = visa ] && [ "$(jget .last4)" = 4242 ] || fail "card: $BODY"

# --- free → pro ---------------------------------------------------------------
billing_put pro k-up-pro
expect 200 "upgrade to pro"
[ "$(jget .plan_id)" = pro ] && [ "$(jget .status)" = active ] && [ "$(jget .change)" = upgraded ] ||
    fail "after upgrade: $BODY"
[ "$(jget .current_period_end)" = "$PERIOD_END" ] || fail "the period must not move on upgrade: $BODY"
[ "$(jget .invoice.status)" = paid ] && [ "$(jget .invoice.number)" = 1 ] || fail "invoice: $BODY"
TOTAL=$(jget .invoice.total_cents)
[ "$TOTAL" = "$(jget '[.invoice.lines[].amount_cents] | add')" ] || fail "total is not the sum of lines: $BODY"
# Prorated from free: the rest of this period on pro, a few seconds short of a month.
[ "$TOTAL" -ge 1190 ] && [ "$TOTAL" -le 1200 ] || fail "prorated total $TOTAL out of range"
INVOICE1=$(jget .invoice.id)
pass "free → pro applies now, keeps the period and charges the prorated rest ($TOTAL cents)"

api GET "/v1/orgs/$ORG/usage"
[ "$(jget .tasks.limit)" = 5000 ] && [ "$(jget .members.limit)" = 25 ] || fail "pro limits: $BODY"
api GET "/v1/orgs/$ORG/invoices/$INVOICE1"
expect 200
[ "$(jget .status)" = paid ] && [ "$(jget '.lines | length')" = 1 ] &&
    [ "$(jget '.lines[0].kind')" = proration_charge ] || fail "invoice 1: $BODY"
pass "the plan's limits apply at once and the invoice has its lines"

# --- a declined upgrade -------------------------------------------------------
billing_card tok_chargeDeclined
billing_put business k-up-business
expect 402 "declined upgrade"
[ "$(jget .code)" = payment_declined ] && [ "$(jget .decline_code)" = card_declined ] ||
    fail "decline problem: $BODY"
DECLINED=$(jget .invoice_id)
billing_sub
[ "$(jget .plan_id)" = pro ] || fail "a declined upgrade changed the plan: $BODY"
api GET "/v1/orgs/$ORG/invoices/$DECLINED"
expect 200
[ "$(jget .status)" = open ] && [ "$(jget .attempt_count)" = 1 ] && [ "$(jget .number)" = 2 ] ||
    fail "declined invoice: $BODY"
# Credit for unused pro, charge for the rest on business.
[ "$(jget '[.lines[].kind] | join(",")')" = "proration_credit,proration_charge" ] ||
    fail "upgrade lines: $BODY"
[ "$(jget .total_cents)" = "$(jget '[.lines[].amount_cents] | add')" ] || fail "sum: $BODY"
billing_put business k-up-business
expect 402 "replay of the declined upgrade"
[ "$(header Idempotent-Replayed)" = true ] || fail "no Idempotent-Replayed on replay"
[ "$(billing_sql "SELECT count(*) FROM billing.payment_attempts WHERE invoice_id = '$DECLINED'")" = 1 ] ||
    fail "the replay charged again"
pass "a declined upgrade answers 402 payment_declined, keeps pro, leaves the invoice open with its attempt"

# --- who may change plans ------------------------------------------------------
new_user billing-member >/dev/null
MEMBER=$TOKEN MEMBER_EMAIL=$EMAIL
new_user billing-stranger >/dev/null
STRANGER=$TOKEN
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member
TOKEN=$MEMBER billing_put free k-member "$ORG"
expect 403 "a member changes the plan"
TOKEN=$MEMBER api GET "/v1/orgs/$ORG/subscription"
expect 200 "a member reads the subscription"
TOKEN=$STRANGER billing_put free k-stranger "$ORG"
expect 404 "a stranger changes the plan"
TOKEN=$STRANGER api GET "/v1/orgs/$ORG/invoices"
expect 404 "a stranger lists invoices"
pass "members read, only owners and admins change plans; strangers get 404"

# --- a downgrade must fit the new plan's limits --------------------------------
TOKEN=$OWNER
EXTRA_IDS=()
for i in 1 2 3; do
    new_user "billing-extra$i" >/dev/null
    id=$USER_ID e=$EMAIL
    TOKEN=$OWNER add_member "$ORG" "$e" member
    EXTRA_IDS+=("$id")
done
TOKEN=$OWNER ORG_ID=$ORG
billing_put free k-down-too-big
expect 402 "downgrade with 5 members to a 3-member plan"
# The one plan-limit problem, as auth and tasks answer it.
[ "$(jget .code)" = plan_limit_exceeded ] && [ "$(jget .type)" = "https://bulkhead.dev/problems/plan_limit_exceeded" ] &&
    [ "$(jget .resource)" = members ] && [ "$(jget .usage)" = 5 ] && [ "$(jget .limit)" = 3 ] ||
    fail "limits problem: $BODY"
for id in "${EXTRA_IDS[@]:0:2}"; do
    api DELETE "/v1/orgs/$ORG/members/$id"
    expect 204 "remove a member"
done
billing_put free k-down
expect 200 "downgrade to free"
[ "$(jget .change)" = downgrade_scheduled ] && [ "$(jget .plan_id)" = pro ] &&
    [ "$(jget .pending_plan_id)" = free ] || fail "scheduled downgrade: $BODY"
billing_sub
[ "$(jget .plan_id)" = pro ] && [ "$(jget .pending_plan_id)" = free ] || fail "after downgrade: $BODY"
pass "a downgrade over the member limit is 409 with what must change; within it, it waits for the period end"

# The organization now has 3 members, the free plan's limit: while the
# downgrade is scheduled, a fourth is refused although pro allows 25.
new_user billing-extra4 >/dev/null
TOKEN=$OWNER api POST "/v1/orgs/$ORG/members" "{\"email\":\"$EMAIL\",\"role\":\"member\"}"
expect 402 "a fourth member while a downgrade to a 3-member plan is scheduled"
[ "$(jget .code)" = plan_limit_exceeded ] || fail "code: $BODY"
TOKEN=$OWNER api GET "/v1/orgs/$ORG/usage"
[ "$(jget .members.limit)" = 3 ] || fail "the member limit while a downgrade is scheduled: $BODY"
TOKEN=$OWNER ORG_ID=$ORG
pass "while a downgrade is scheduled, member adds count against the lower plan's seat limit"

# --- cancel at period end --------------------------------------------------------
billing_cancel k-cancel
expect 200 "cancel"
[ "$(jget .cancel_at_period_end)" = true ] && [ "$(jget .status)" = active ] &&
    [ "$(jget .plan_id)" = pro ] && [ "$(jget .pending_plan_id)" = null ] || fail "cancel: $BODY"
billing_cancel k-cancel
[ "$(header Idempotent-Replayed)" = true ] || fail "cancel replay"
billing_cancel k-cancel-again
expect 200
[ "$(jget .change)" = none ] || fail "second cancel: $BODY"
billing_put pro k-resume
expect 200 "undo the cancellation"
[ "$(jget .change)" = resumed ] && [ "$(jget .cancel_at_period_end)" = false ] || fail "resume: $BODY"
billing_cancel k-cancel-final
expect 200
billing_sub
[ "$(jget .cancel_at_period_end)" = true ] && [ "$(jget .status)" = active ] || fail "final: $BODY"
pass "DELETE cancels at the period end (still active until then), and can be undone"

# --- invoices list --------------------------------------------------------------
api GET "/v1/orgs/$ORG/invoices?limit=1"
expect 200
[ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0].number')" = 2 ] || fail "page 1: $BODY"
CURSOR=$(jget .next_cursor)
[ "$(header Link)" = "</v1/orgs/$ORG/invoices?limit=1&cursor=$CURSOR>; rel=\"next\"" ] ||
    fail "Link: $(header Link)"
api GET "/v1/orgs/$ORG/invoices?limit=1&cursor=$CURSOR"
expect 200
[ "$(jget '.data[0].number')" = 1 ] && [ "$(jget .next_cursor)" = null ] || fail "page 2: $BODY"
[ -z "$(header Link)" ] || fail "Link on the last page"
api GET "/v1/orgs/$ORG/invoices?cursor=nonsense"
expect 422 "bad cursor"
pass "invoices page newest first with a cursor and a Link to the next page"

# --- the free plan cannot be canceled --------------------------------------------
billing_owner freebie
billing_cancel k-free
expect 409 "cancel free"
[ "$(jget .code)" = nothing_to_cancel ] || fail "code: $BODY"
pass "canceling the free plan is 409 nothing_to_cancel"

billing_finish
