#!/usr/bin/env bash
# Every change to a task, project or comment publishes its event through
# the outbox on the same transaction (docs/events.md): the right types in
# order, with the data consumers rely on, and nothing for a refused change.
# When its event cannot be written, the change does not happen either.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"

bh_start serve --no-workers

read -r OWNER ORG OWNER_ID _ <<<"$(tasks_signup owner)"
read -r MEMBER _ MEMBER_ID MEMBER_EMAIL <<<"$(tasks_signup member)"
TOKEN=$OWNER tasks_add_member "$ORG" "$MEMBER_EMAIL" member
T="/v1/orgs/$ORG/tasks"

types() { tasks_events "$1" | jq -r .type | paste -sd' ' -; }
event() { tasks_events "$1" | jq -c "select(.type == \"$2\")" | tail -1; }

TOKEN=$OWNER api POST "$T" '{"title":"Ship it","assignee_id":"'"$MEMBER_ID"'"}'
expect 201
TASK=$(jget .id)
[ "$(types "$TASK")" = "task.created task.assigned" ] || fail "create: $(types "$TASK")"
e=$(event "$TASK" task.created)
jq -e --arg t "$TASK" --arg o "$ORG" --arg u "$OWNER_ID" --arg m "$MEMBER_ID" \
  '.data.task_id == $t and .data.org_id == $o and .data.title == "Ship it" and
   .data.created_by == $u and .data.assignee_id == $m and .org_id == $o and .actor_id == $u' <<<"$e" >/dev/null ||
  fail "task.created: $e"
e=$(event "$TASK" task.assigned)
jq -e --arg m "$MEMBER_ID" --arg u "$OWNER_ID" \
  '.data.assignee_id == $m and .data.created_by == $u and .data.title == "Ship it"' <<<"$e" >/dev/null ||
  fail "task.assigned: $e"
pass "creating an assigned task publishes task.created and task.assigned"

TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"done"}'
expect 422
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"title":"x"}' -H 'If-Match: "v7"'
expect 412
[ "$(types "$TASK")" = "task.created task.assigned" ] || fail "refused changes published: $(types "$TASK")"
pass "a refused change (422, 412) publishes nothing"

TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"in_progress"}'
expect 200
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"done"}'
expect 200
e=$(event "$TASK" task.completed)
jq -e --arg m "$MEMBER_ID" --arg u "$OWNER_ID" \
  '.data.completed_by == $m and .data.created_by == $u and .actor_id == $m' <<<"$e" >/dev/null ||
  fail "task.completed: $e"
TOKEN=$OWNER api PATCH "$T/$TASK" '{"status":"todo","assignee_id":"'"$OWNER_ID"'"}'
expect 200
e=$(event "$TASK" task.reopened)
jq -e --arg u "$OWNER_ID" '.data.reopened_by == $u' <<<"$e" >/dev/null || fail "task.reopened: $e"
e=$(event "$TASK" task.assigned)
jq -e --arg u "$OWNER_ID" '.data.assignee_id == $u and .data.version == 4' <<<"$e" >/dev/null ||
  fail "second task.assigned: $e"
[ "$(types "$TASK")" = "task.created task.assigned task.updated task.updated task.completed task.updated task.assigned task.reopened" ] ||
  fail "sequence: $(types "$TASK")"
pass "PATCH publishes task.updated, plus task.completed / task.reopened / task.assigned when they happen"

TOKEN=$MEMBER api POST "$T/$TASK/comments" '{"body":"looks good"}'
expect 201
COMMENT=$(jget .id)
e=$(event "$TASK" task.commented)
jq -e --arg t "$TASK" --arg c "$COMMENT" --arg m "$MEMBER_ID" --arg u "$OWNER_ID" \
  '.data.task_id == $t and .data.comment_id == $c and .data.author_id == $m and
   .data.assignee_id == $u and .data.created_by == $u and .data.title == "Ship it"' <<<"$e" >/dev/null ||
  fail "task.commented: $e"
pass "a comment publishes task.commented with author, assignee, creator and title"

TOKEN=$OWNER api DELETE "$T/$TASK"
expect 204
e=$(event "$TASK" task.deleted)
jq -e --arg u "$OWNER_ID" '.data.deleted_by == $u and .data.title == "Ship it"' <<<"$e" >/dev/null ||
  fail "task.deleted: $e"
pass "deleting publishes task.deleted"

TOKEN=$OWNER api POST "/v1/orgs/$ORG/projects" '{"name":"P"}'
P=$(jget .id)
TOKEN=$OWNER api PATCH "/v1/orgs/$ORG/projects/$P" '{"name":"Q"}'
TOKEN=$OWNER api DELETE "/v1/orgs/$ORG/projects/$P"
expect 204
[ "$(types "$P")" = "project.created project.renamed project.deleted" ] || fail "projects: $(types "$P")"
pass "projects publish project.created, project.renamed and project.deleted"

# The task and its event are one transaction: an outbox that refuses the
# event (a trigger this test installs, for one title only) must leave no
# task behind. Committing the task first and its events afterwards would.
title="no event, no task $(date +%s%N)"
fn="platform.test_refuse_event_$$"
pg "CREATE FUNCTION $fn() RETURNS trigger LANGUAGE plpgsql AS
      \$f\$ BEGIN RAISE EXCEPTION 'test: event refused'; END \$f\$;
    CREATE TRIGGER test_refuse_event_$$ BEFORE INSERT ON platform.outbox FOR EACH ROW
      WHEN (NEW.payload->'data'->>'title' = '$title') EXECUTE FUNCTION $fn();" >/dev/null
bh_on_exit "pg 'DROP TRIGGER IF EXISTS test_refuse_event_$$ ON platform.outbox; DROP FUNCTION IF EXISTS $fn()' >/dev/null"
TOKEN=$OWNER api POST "$T" "{\"title\":\"$title\"}"
[ "$STATUS" != 201 ] || fail "a task whose event was refused was created: $BODY"
[ "$(pg "SELECT count(*) FROM tasks.tasks WHERE title = '$title'")" = 0 ] ||
  fail "the task committed although its task.created event did not"
[ "$(pg "SELECT count(*) FROM platform.outbox WHERE payload->'data'->>'title' = '$title'")" = 0 ] ||
  fail "an event of the refused task is in the outbox"
[ "$(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'")" = \
  "$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'")" ] || fail "the org's task counter moved"
pass "an event the outbox refuses takes its task with it (status $STATUS, no row in tasks.tasks)"
