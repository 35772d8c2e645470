#!/usr/bin/env bash
# The notification consumers against events written straight into the
# outbox (as the platform role), the way any publisher would: billing news
# goes to an organization's owners and admins (not its members), comments
# reach the assignee and the creator but not the author, and payloads with
# missing or wrongly typed fields are tolerated (neutral words, or skipped),
# never a crash or an endless retry.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

bh_start

new_user owner
OWNER=$TOKEN OWNER_ID=$USER_ID ORG=$ORG_ID
new_user admin
ADMIN=$TOKEN ADMIN_ID=$USER_ID ADMIN_EMAIL=$EMAIL
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$ADMIN_EMAIL" admin
TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member

# publish TYPE ACTOR DATA: an event of $ORG as any module would write it;
# prints its id.
publish() {
    local id
    id=$(python3 -c 'import uuid; print(uuid.uuid4())')
    as_role bh_platform "INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)
        VALUES ('$id', '$1', '$ORG', now(), jsonb_build_object('id', '$id', 'type', '$1',
            'occurred_at', '2026-01-01T00:00:00Z', 'org_id', '$ORG', 'actor_id', '$2',
            'data', '$3'::jsonb, 'trace', '{}'::jsonb))" >/dev/null
    echo "$id"
}
# relayed_and_seen ID CONSUMER: the relay sent it and the consumer recorded it.
relayed_and_seen() {
    [ "$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT
        (SELECT sent_at IS NOT NULL FROM platform.outbox WHERE id = '$1') AND
        EXISTS (SELECT 1 FROM notifications.inbox WHERE event_id = '$1' AND consumer = '$2')")" = t ]
}
relayed() {
    [ "$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT sent_at IS NOT NULL FROM platform.outbox WHERE id = '$1'")" = t ]
}
count_of() { # TOKEN TYPE
    TOKEN=$1 notif_count limit=100 "select(.type == \"$2\")"
}

# --- billing events: owners and admins -----------------------------------------
ev=$(publish invoice.payment_failed "" \
  '{"org_id":"'"$ORG"'","invoice_id":"'"$ORG"'","number":42,"total_cents":1250,"currency":"EUR"}')
eventually 15 relayed_and_seen "$ev" notifications.invoice_payment_failed ||
  fail "invoice.payment_failed was not consumed"
[ "$(count_of "$OWNER" invoice.payment_failed)" = 1 ] || fail "the owner was not told"
[ "$(count_of "$ADMIN" invoice.payment_failed)" = 1 ] || fail "the admin was not told"
[ "$(count_of "$MEMBER" invoice.payment_failed)" = 0 ] || fail "a plain member was told"
TOKEN=$ADMIN notif_count >/dev/null
jq -e '[.data[] | select(.type == "invoice.payment_failed")][0] |
    (.body | contains("12.50 EUR") and contains("#42")) and .data.total_cents == 1250' \
  <<<"$BODY" >/dev/null || fail "payment failed: $BODY"
pass "invoice.payment_failed reaches the org's owners and admins, not its members"

ev=$(publish subscription.changed "$OWNER_ID" '{"org_id":"'"$ORG"'","plan_id":"pro","status":"active","previous_plan_id":"free"}')
eventually 15 relayed_and_seen "$ev" notifications.subscription_changed || fail "subscription.changed not consumed"
[ "$(count_of "$OWNER" subscription.changed)" = 1 ] && [ "$(count_of "$ADMIN" subscription.changed)" = 1 ] &&
  [ "$(count_of "$MEMBER" subscription.changed)" = 0 ] || fail "subscription.changed recipients"
TOKEN=$OWNER notif_count >/dev/null
jq -e '[.data[] | select(.type == "subscription.changed")][0] |
    (.body | contains("pro plan")) and .data.previous_plan_id == "free"' <<<"$BODY" >/dev/null ||
  fail "subscription.changed: $BODY"
pass "subscription.changed reaches owners and admins"

# --- task.commented: assignee and creator, never the author ----------------------
task=$(python3 -c 'import uuid; print(uuid.uuid4())')
ev=$(publish task.commented "$ADMIN_ID" '{"task_id":"'"$task"'","org_id":"'"$ORG"'","title":"Plan Q3",
  "author_id":"'"$ADMIN_ID"'","assignee_id":"'"$MEMBER_ID"'","created_by":"'"$ADMIN_ID"'"}')
eventually 15 relayed_and_seen "$ev" notifications.task_commented || fail "task.commented not consumed"
[ "$(count_of "$MEMBER" task.commented)" = 1 ] && [ "$(count_of "$ADMIN" task.commented)" = 0 ] ||
  fail "comment by the creator: the assignee only"
ev=$(publish task.commented "$MEMBER_ID" '{"task_id":"'"$task"'","title":"Plan Q3",
  "author_id":"'"$MEMBER_ID"'","assignee_id":"'"$OWNER_ID"'","created_by":"'"$OWNER_ID"'"}')
eventually 15 relayed_and_seen "$ev" notifications.task_commented || fail "task.commented not consumed"
[ "$(count_of "$OWNER" task.commented)" = 1 ] || fail "assignee = creator must be told once"
[ "$(count_of "$MEMBER" task.commented)" = 1 ] || fail "the author was told"
pass "task.commented reaches the assignee and the creator once each, never the author"

# --- missing and wrong fields ------------------------------------------------------
ev=$(publish task.assigned "$OWNER_ID" '{"assignee_id":"'"$MEMBER_ID"'"}')
eventually 15 relayed_and_seen "$ev" notifications.task_assigned || fail "a bare task.assigned not consumed"
TOKEN=$MEMBER notif_count >/dev/null
jq -e '[.data[] | select(.type == "task.assigned")][0] | .title == "Task assigned to you: a task"' \
  <<<"$BODY" >/dev/null || fail "task.assigned without a title: $BODY"
pass "a task.assigned without a title is notified with a neutral word"

dead_events() { "$BH_BIN" jobs dead --queue notifications 2>/dev/null | grep -c notifications || true; }
dead_before=$(dead_events)
skipped=()
skipped+=("$(publish task.assigned "$OWNER_ID" '{"assignee_id":null,"title":"nobody"}')")
skipped+=("$(publish task.assigned "$OWNER_ID" '{"assignee_id":42,"title":"number"}')")
skipped+=("$(publish task.completed "$OWNER_ID" '{"title":"no creator"}')")
skipped+=("$(publish user.signed_up "" '{"email":"x@example.test"}')")
skipped+=("$(publish member.added "$OWNER_ID" '{"user_id":"not-a-uuid"}')")
skipped+=("$(publish task.commented "$OWNER_ID" '[1,2,3]')")
odd=$(publish invoice.payment_failed "" '{"org_id":"'"$ORG"'","total_cents":"lots","number":{"a":1}}')
for ev in "${skipped[@]}" "$odd"; do
    eventually 15 relayed "$ev" || fail "event $ev was not relayed"
done
# Whatever they did, they are done: no job of theirs is waiting for a retry.
sleep 2
kill -0 "$BH_PID" || fail "the server died"
[ "$(dead_events)" = "$dead_before" ] || fail "malformed events went to the dead letters"
[ "$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT count(*) FROM notifications.inbox
    WHERE event_id = ANY('{$(IFS=,; echo "${skipped[*]}")}'::uuid[])")" = 0 ] ||
  fail "a skipped event was recorded as handled"
api GET /health/live
expect 200
TOKEN=$ADMIN notif_count >/dev/null
jq -e '[.data[] | select(.type == "invoice.payment_failed")] | length == 2 and
    (.[0].body | contains("the amount due") and contains("(the latest)"))' <<<"$BODY" >/dev/null ||
  fail "payment failed with odd fields: $BODY"
pass "events with missing or wrongly typed fields are skipped or worded neutrally, never a crash"
