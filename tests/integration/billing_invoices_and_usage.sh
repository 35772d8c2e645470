#!/usr/bin/env bash
# Invoices in the database: per-organization numbers without gaps or
# duplicates under concurrent plan changes (a counter row locked per org);
# totals that must equal the sum of their lines; finalized invoices that no
# statement can change. And usage counted from task.* and member.* events.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

bh_start

# --- numbers under concurrency ------------------------------------------------------
billing_owner numbers
billing_card tok_chargeDeclined
URL="$BH_URL/v1/orgs/$ORG_ID/subscription"
seq 1 12 | xargs -P 12 -I{} curl -sS -o /dev/null -w '%{http_code}\n' -X PUT \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: numbers-{}' --data-binary '{"plan_id":"pro"}' "$URL" >"$BH_TMP/codes"
DECLINED=$(grep -c '^402$' "$BH_TMP/codes" || true)
BUSY=$(grep -c '^409$' "$BH_TMP/codes" || true)
[ $((DECLINED + BUSY)) = 12 ] || fail "statuses: $(sort "$BH_TMP/codes" | uniq -c | tr '\n' ' ')"
[ "$DECLINED" -ge 1 ] || fail "no request got through"
NUMBERS=$(billing_sql "SELECT string_agg(number::text, ',' ORDER BY number) FROM billing.invoices WHERE org_id = '$ORG_ID'")
[ "$NUMBERS" = "$(seq -s, 1 "$DECLINED")" ] || fail "numbers $NUMBERS for $DECLINED invoices"
OPEN=$(billing_sql "SELECT count(*) FROM billing.invoices WHERE org_id = '$ORG_ID' AND status = 'open'")
[ "$OPEN" = 1 ] || fail "$OPEN open plan-change invoices (a newer attempt voids the older)"
pass "12 concurrent upgrades: $DECLINED invoices numbered 1..$DECLINED without gaps, $BUSY refused while a charge was in flight"

# --- the database guards invoices ------------------------------------------------------
INV=$(billing_sql "SELECT id FROM billing.invoices WHERE org_id = '$ORG_ID' AND status = 'open'")
as_billing() { psql "${BH_PG_ADMIN_URL:?}" -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE bh_billing" -c "$1" 2>&1; }
refused() { # WHAT SQL PATTERN
    local out
    if out=$(as_billing "$2"); then fail "$1 was allowed"; fi
    grep -q "$3" <<<"$out" || fail "$1: unexpected error: $out"
}
refused "changing a finalized total" "UPDATE billing.invoices SET total_cents = 1 WHERE id = '$INV'" "finalized"
refused "changing a finalized line" "UPDATE billing.invoice_lines SET amount_cents = 1 WHERE invoice_id = '$INV'" "finalized"
refused "adding a line to a finalized invoice" "INSERT INTO billing.invoice_lines SELECT invoice_id, 9, 'subscription', 'x', plan_id, 0, period_start, period_end FROM billing.invoice_lines WHERE invoice_id = '$INV' LIMIT 1" "finalized"
refused "deleting a finalized invoice" "DELETE FROM billing.invoices WHERE id = '$INV'" "cannot be deleted"
as_billing "UPDATE billing.invoices SET status = 'paid', paid_at = now() WHERE id = '$INV'" >/dev/null ||
    fail "open → paid was refused"
refused "paid → open" "UPDATE billing.invoices SET status = 'open', paid_at = NULL WHERE id = '$INV'" "cannot become"
SUB=$(billing_sql "SELECT id FROM billing.subscriptions WHERE org_id = '$ORG_ID'")
refused "a total that is not the sum of its lines" "BEGIN; INSERT INTO billing.invoices (id, org_id, subscription_id, number, reason, plan_id, currency, total_cents, period_start, period_end, created_at) VALUES (gen_random_uuid(), '$ORG_ID', '$SUB', 999, 'renewal', 'pro', 'USD', 1200, now(), now() + interval '1 month', now()); COMMIT;" "lines sum to"
pass "finalized invoices are immutable, paid is final, and a total must equal its lines (database-enforced)"

# --- usage from events -----------------------------------------------------------------
billing_owner usage
usage_is() { # TASKS MEMBERS
    api GET "/v1/orgs/$ORG_ID/usage" && [ "$(jget .tasks.used)" = "$1" ] && [ "$(jget .members.used)" = "$2" ]
}
billing_wait_for usage_is 0 1 || fail "new org usage: $BODY"
api POST "/v1/orgs/$ORG_ID/tasks" '{"title":"count me"}'
expect 201 "create a task"
TASK=$(jget .id)
api POST "/v1/orgs/$ORG_ID/tasks" '{"title":"and me"}'
expect 201
billing_wait_for usage_is 2 1 || fail "after two tasks: $BODY"
api DELETE "/v1/orgs/$ORG_ID/tasks/$TASK"
[ "$STATUS" = 204 ] || fail "delete task: $STATUS $BODY"
OWNER=$TOKEN OWNER_ORG=$ORG_ID
new_user billing-usage-member >/dev/null
TOKEN=$OWNER ORG_ID=$OWNER_ORG
add_member "$ORG_ID" "$EMAIL" member
billing_wait_for usage_is 1 2 || fail "after a delete and a new member: $BODY"
[ "$(billing_sql "SELECT count(*) FROM billing.inbox WHERE consumer LIKE 'billing.usage.%' AND event_id IN
    (SELECT (payload->>'id')::uuid FROM platform.outbox WHERE payload->>'org_id' = '$ORG_ID')")" -ge 4 ] ||
    fail "the consumed events are not in billing.inbox"
pass "usage follows task.created/task.deleted, org.created and member.added through the inbox"

billing_finish
