#!/usr/bin/env bash
# Notifications learn about the rest of the system only from events: a
# signup gets a welcome email, a task assigned to someone reaches their
# inbox and their mailbox, its completion reaches its creator, and the same
# event delivered twice has one effect (the consumer's inbox).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

bh_start

new_user owner
OWNER=$TOKEN OWNER_ID=$USER_ID OWNER_EMAIL=$EMAIL ORG=$ORG_ID
new_user member
MEMBER=$TOKEN MEMBER_ID=$USER_ID MEMBER_EMAIL=$EMAIL

# --- signup: welcome, in the inbox and as an .eml file ---------------------
TOKEN=$MEMBER eventually 10 notif_has 1 user.signed_up || fail "no welcome notification"
eventually 10 has_mail "$MEMBER_EMAIL" || fail "no welcome email for $MEMBER_EMAIL"
welcome=$(mail_to "$MEMBER_EMAIL")
[ "$(mail_header "$welcome" Subject)" = "Welcome to Bulkhead, member User" ] ||
  fail "welcome subject: $(mail_header "$welcome" Subject)"
grep -qF "Your account $MEMBER_EMAIL is ready" <<<"$(mail_part "$welcome" text/plain)" ||
  fail "welcome text: $(mail_part "$welcome" text/plain)"
grep -qF "<strong>$MEMBER_EMAIL</strong>" <<<"$(mail_part "$welcome" text/html)" ||
  fail "welcome html: $(mail_part "$welcome" text/html)"
pass "signup writes a welcome .eml (text and HTML) and a welcome notification"

TOKEN=$OWNER add_member "$ORG" "$MEMBER_EMAIL" member
TOKEN=$MEMBER eventually 10 notif_has 1 member.added || fail "no member.added notification"
TOKEN=$MEMBER notif_count limit=100 'select(.type == "member.added")' >/dev/null
jq -e --arg o "$ORG" '[.data[] | select(.type == "member.added")][0] |
    .data.org_id == $o and .data.role == "member" and (.body | contains("as member"))' \
  <<<"$BODY" >/dev/null || fail "member.added: $BODY"
pass "being added to an organization is a notification"

# --- task.assigned: the assignee's inbox and mailbox ------------------------
title='Ship <v2> & "friends"'
TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" "$(jq -nc --arg t "$title" --arg a "$MEMBER_ID" \
  '{title: $t, assignee_id: $a}')"
expect 201 "create an assigned task"
TASK=$(jget .id)
TOKEN=$MEMBER eventually 10 notif_has 1 task.assigned || fail "no task.assigned notification"
TOKEN=$MEMBER notif_count >/dev/null
n=$(jq -c '[.data[] | select(.type == "task.assigned")][0]' <<<"$BODY")
jq -e --arg t "$TASK" --arg o "$ORG" --arg u "$OWNER_ID" --arg title "$title" \
  '.data.task_id == $t and .data.org_id == $o and .data.created_by == $u and .read_at == null and
   .title == "Task assigned to you: " + $title and (.body | startswith("owner User assigned you")) and
   (.id | test("^[0-9a-f-]{36}$")) and (.created_at | test("Z$"))' <<<"$n" >/dev/null ||
  fail "task.assigned notification: $n"
subject="Task assigned to you: $title"
assigned_mail() { mail_to "$MEMBER_EMAIL" | while read -r f; do
    [ "$(mail_header "$f" Subject)" = "$subject" ] && echo "$f"; done; }
has_assigned_mail() { [ -n "$(assigned_mail)" ]; }
eventually 10 has_assigned_mail || fail "no task.assigned email"
f=$(assigned_mail)
grep -qF '<strong>Ship &lt;v2&gt; &amp; &quot;friends&quot;</strong>' <<<"$(mail_part "$f" text/html)" ||
  fail "the HTML email does not escape the title: $(mail_part "$f" text/html)"
grep -qF "assigned you the task \"$title\"" <<<"$(mail_part "$f" text/plain)" ||
  fail "text email: $(mail_part "$f" text/plain)"
pass "a task assigned to a second user reaches their inbox and their mailbox (HTML-escaped)"

# --- task.completed: the creator hears, the completer does not --------------
TOKEN=$MEMBER api PATCH "/v1/orgs/$ORG/tasks/$TASK" '{"status":"in_progress"}'
expect 200
TOKEN=$MEMBER api PATCH "/v1/orgs/$ORG/tasks/$TASK" '{"status":"done"}'
expect 200
TOKEN=$OWNER eventually 10 notif_has 1 task.completed || fail "the creator got no task.completed"
TOKEN=$OWNER notif_count >/dev/null
jq -e --arg t "$TASK" --arg m "$MEMBER_ID" '[.data[] | select(.type == "task.completed")][0] |
    .data.task_id == $t and .data.completed_by == $m and (.body | startswith("member User completed"))' \
  <<<"$BODY" >/dev/null || fail "task.completed: $BODY"
[ "$(TOKEN=$MEMBER notif_count limit=100 'select(.type == "task.completed")')" = 0 ] ||
  fail "the completer was told about their own completion"
pass "completing a task notifies its creator, not the one who completed it"

# --- the same event twice: one notification, one email ----------------------
event_id=$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT id FROM platform.outbox
    WHERE aggregate_id = '$TASK' AND type = 'task.assigned' ORDER BY seq LIMIT 1")
[ -n "$event_id" ] || fail "no task.assigned event in the outbox"
dup=$(as_role bh_platform "INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)
    SELECT gen_random_uuid(), type, aggregate_id, occurred_at, payload FROM platform.outbox
    WHERE id = '$event_id' RETURNING id" | grep -E '^[0-9a-f-]{36}$')
sent() { [ "$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT sent_at IS NOT NULL FROM platform.outbox WHERE id = '$dup'")" = t ]; }
eventually 10 sent || fail "the duplicate was not relayed"
# The duplicate is on the queue: give the consumers time to (not) act on it.
sleep 2
[ "$(TOKEN=$MEMBER notif_count limit=100 'select(.type == "task.assigned")')" = 1 ] ||
  fail "a redelivered event made a second notification"
[ "$(assigned_mail | grep -c .)" = 1 ] || fail "a redelivered event sent a second email"
seen=$(psql "$BH_PG_ADMIN_URL" -qAtX -c "SELECT count(*) FROM notifications.inbox
    WHERE consumer = 'notifications.task_assigned' AND event_id = '$event_id'")
[ "$seen" = 1 ] || fail "inbox rows for the event: $seen"
pass "the same event delivered twice makes one notification and sends one email"
