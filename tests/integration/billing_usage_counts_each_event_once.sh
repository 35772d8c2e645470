#!/usr/bin/env bash
# Billing counts usage from task.created/task.deleted in batches (a coalesced
# consumer: one transaction, one inbox statement and one upsert per batch),
# and every event still counts exactly once: after a burst of concurrent
# creates and deletes, and after every one of those events is delivered a
# second time (marked unsent, so the relay fans them out again).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

bh_start
billing_owner coalesced
usage_is() { # TASKS
    api GET "/v1/orgs/$ORG_ID/usage" && [ "$(jget .tasks.used)" = "$1" ]
}
# The billing queue has no job ready or running (its delayed sweeps aside),
# and the organization has no unsent event.
settled() {
    [ "$(billing_sql "SELECT count(*) FROM platform.outbox WHERE sent_at IS NULL AND payload->>'org_id' = '$ORG_ID'")" = 0 ] &&
        "$BH_BIN" jobs stats 2>/dev/null | awk '$1 == "billing" { exit !($2 == 0 && $3 == 0) } END { }'
}
billing_wait_for usage_is 0 || fail "new org usage: $BODY"

seq 1 45 | xargs -P 8 -I{} curl -sS -o "$BH_TMP/created.{}" -w '%{http_code}\n' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"title":"burst {}"}' "$BH_URL/v1/orgs/$ORG_ID/tasks" >"$BH_TMP/codes"
[ "$(grep -c '^201$' "$BH_TMP/codes")" = 45 ] || fail "creates: $(sort "$BH_TMP/codes" | uniq -c | tr '\n' ' ')"
for i in $(seq 1 15); do jq -r .id "$BH_TMP/created.$i"; done |
    xargs -P 8 -I{} curl -sS -o /dev/null -w '%{http_code}\n' -X DELETE \
        -H "Authorization: Bearer $TOKEN" "$BH_URL/v1/orgs/$ORG_ID/tasks/{}" >"$BH_TMP/deleted"
[ "$(grep -c '^204$' "$BH_TMP/deleted")" = 15 ] || fail "deletes: $(sort "$BH_TMP/deleted" | uniq -c | tr '\n' ' ')"
billing_wait_for usage_is 30 || fail "after 45 creates and 15 deletes: $BODY"
billing_wait_for settled || fail "the events were not all handled"
usage_is 30 || fail "usage moved after the queue drained: $BODY"
pass "45 concurrent creates and 15 deletes counted once each: usage 30"

# Every task event of the organization delivered again.
RESENT=$(billing_sql "WITH r AS (UPDATE platform.outbox SET sent_at = NULL WHERE sent_at IS NOT NULL AND payload->>'org_id' = '$ORG_ID' AND type IN ('task.created', 'task.deleted') RETURNING 1) SELECT count(*) FROM r")
[ "$RESENT" = 60 ] || fail "$RESENT events marked unsent, expected 60"
billing_wait_for settled || fail "the second deliveries were not all handled"
SEEN=$(billing_sql "SELECT count(*) FROM billing.inbox WHERE consumer IN ('billing.usage.task_created', 'billing.usage.task_deleted') AND event_id IN (SELECT (payload->>'id')::uuid FROM platform.outbox WHERE payload->>'org_id' = '$ORG_ID')")
[ "$SEEN" = 60 ] || fail "$SEEN inbox rows for 60 events"
usage_is 30 || fail "a second delivery was counted again: $BODY"
[ "$(billing_sql "SELECT tasks FROM billing.usage WHERE org_id = '$ORG_ID'")" = 30 ] || fail "usage row"
# The 45 task.created deliveries were queued in one go, so they were taken
# in batches.
ops_curl -sS "$BH_URL/metrics" >"$BH_TMP/metrics"
grep -qE '^bulkhead_jobs_batches_total\{queue="billing",type="event:billing.usage.task_created"\} [1-9]' \
    "$BH_TMP/metrics" || fail "no batch of task.created: $(grep batches_total "$BH_TMP/metrics")"
pass "a second delivery of all 60 events counts zero times, in batches: usage stays 30"
billing_finish
