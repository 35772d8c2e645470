#!/usr/bin/env bash
# A task's life over HTTP: create (validation, Location, ETag), read with
# conditional requests, PATCH with If-Match and the status machine, and who
# may delete it.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

bh_start

read -r OWNER ORG OWNER_ID _ <<<"$(tasks_signup owner)"
read -r MEMBER _ MEMBER_ID MEMBER_EMAIL <<<"$(tasks_signup member)"
read -r _ _ STRANGER_ID _ <<<"$(tasks_signup stranger)"
TOKEN=$OWNER tasks_add_member "$ORG" "$MEMBER_EMAIL" member
T="/v1/orgs/$ORG/tasks"

# --- create ---------------------------------------------------------------
TOKEN=$OWNER api POST "$T" '{"title":"Write the report","priority":"high","due_at":"2026-03-01T09:30:00+01:00","assignee_id":"'"$MEMBER_ID"'"}'
expect 201 "create a task"
TASK=$(jget .id)
[ "$(header Location)" = "$T/$TASK" ] || fail "Location is $(header Location)"
[ "$(header ETag)" = '"v1"' ] || fail "ETag of a new task is $(header ETag)"
[ "$(jget .status)" = todo ] && [ "$(jget .priority)" = high ] && [ "$(jget .version)" = 1 ] ||
  fail "new task body: $BODY"
[ "$(jget .due_at)" = "2026-03-01T08:30:00Z" ] || fail "due_at is not normalized to UTC: $(jget .due_at)"
[ "$(jget .created_by)" = "$OWNER_ID" ] && [ "$(jget .assignee_id)" = "$MEMBER_ID" ] || fail "people: $BODY"
pass "a task is created with Location, a strong ETag and UTC times"

TOKEN=$OWNER api POST "$T" '{"title":"Defaults"}'
expect 201
[ "$(jget .priority)" = normal ] && [ "$(jget .description)" = "" ] && [ "$(jget .assignee_id)" = null ] ||
  fail "defaults: $BODY"
pass "priority defaults to normal"

long_title=$(printf 'x%.0s' $(seq 1 201))
long_desc=$(head -c 10001 /dev/zero | tr '\0' d)
for body in '{}' '{"title":""}' "{\"title\":\"$long_title\"}" \
            "{\"title\":\"ok\",\"description\":\"$long_desc\"}" \
            '{"title":"ok","priority":"critical"}' '{"title":"ok","due_at":"tomorrow"}' \
            '{"title":"ok","due_at":"2026-02-30T00:00:00Z"}' '{"title":"ok","assignee_id":"nope"}' \
            '{"title":"ok","project_id":42}' '{"title":"ok","colour":"red"}' \
            '{"title":"ok","status":"done"}' '{"title":["x"]}'; do
  TOKEN=$OWNER api POST "$T" "$body"
  expect 422 "invalid body $body"
  [ "$(jget .code)" = validation_failed ] && [ "$(jget '.errors | length')" -ge 1 ] || fail "problem for $body: $BODY"
done
pass "invalid bodies answer 422 validation_failed with field errors"

TOKEN=$OWNER api POST "$T" '{"title":"ok","assignee_id":"'"$STRANGER_ID"'"}'
expect 422 "assignee outside the org"
[ "$(jget '.errors[0].field')" = assignee_id ] || fail "field: $BODY"
pass "the assignee must be a member of the org"

TOKEN= api POST "$T" '{"title":"ok"}'
expect 401 "no token"
pass "401 without a token"

# --- read -------------------------------------------------------------------
TOKEN=$MEMBER api GET "$T/$TASK"
expect 200
[ "$(header ETag)" = '"v1"' ] && [ "$(jget .title)" = "Write the report" ] || fail "GET: $BODY"
TOKEN=$MEMBER api GET "$T/$TASK" "" -H 'If-None-Match: "v1"'
expect 304 "If-None-Match with the current ETag"
TOKEN=$MEMBER api GET "$T/$TASK" "" -H 'If-None-Match: W/"v1"'
expect 304 "If-None-Match compares weakly"
TOKEN=$MEMBER api GET "$T/$TASK" "" -H 'If-None-Match: "v0"'
expect 200
TOKEN=$MEMBER api GET "$T/not-a-uuid"
expect 404
TOKEN=$MEMBER api GET "$T/00000000-0000-4000-8000-000000000000"
expect 404
pass "GET answers the task with its ETag, 304 on If-None-Match, 404 for unknown ids"

# --- PATCH: If-Match and the status machine ---------------------------------
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"in_progress"}' -H 'If-Match: "v1"'
expect 200 "PATCH with the current ETag"
[ "$(header ETag)" = '"v2"' ] && [ "$(jget .version)" = 2 ] || fail "version after PATCH: $BODY"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"title":"stale"}' -H 'If-Match: "v1"'
expect 412 "PATCH with a stale ETag"
TOKEN=$MEMBER api GET "$T/$TASK"
[ "$(jget .title)" = "Write the report" ] || fail "a 412 changed the task"
pass "If-Match: the current ETag applies, a stale one answers 412 and changes nothing"

TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"todo"}'
expect 422 "in_progress -> todo"
[ "$(jget .code)" = invalid_transition ] || fail "code: $BODY"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"finished"}'
expect 422
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"done"}'
expect 200 "in_progress -> done (no If-Match: unconditional)"
[ "$(jget .completed_at)" != null ] || fail "completed_at not set: $BODY"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"in_progress"}'
expect 422 "done -> in_progress"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"todo"}'
expect 200 "done -> todo (reopen)"
[ "$(jget .completed_at)" = null ] || fail "reopen keeps completed_at: $BODY"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"status":"done"}'
expect 422 "todo -> done skips in_progress"
[ "$(jget .code)" = invalid_transition ] || fail "code: $BODY"
pass "status moves todo -> in_progress -> done -> todo; anything else is 422 invalid_transition"

TOKEN=$MEMBER api PATCH "$T/$TASK" '{"assignee_id":null,"due_at":null,"description":"more","priority":"low"}'
expect 200
[ "$(jget .assignee_id)" = null ] && [ "$(jget .due_at)" = null ] && [ "$(jget .description)" = more ] ||
  fail "clearing fields: $BODY"
v=$(jget .version)
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"priority":"low"}'
expect 200
[ "$(jget .version)" = "$v" ] || fail "a PATCH that changes nothing made a new version"
TOKEN=$MEMBER api PATCH "$T/$TASK" '{"assignee_id":"'"$STRANGER_ID"'"}'
expect 422 "assigning a non-member"
pass "PATCH clears nullable fields, a no-op PATCH keeps the version"

# --- DELETE: creator, admin or owner ----------------------------------------
TOKEN=$MEMBER api DELETE "$T/$TASK"
expect 403 "a member deletes someone else's task"
TOKEN=$MEMBER api POST "$T" '{"title":"mine"}'
expect 201
MINE=$(jget .id)
TOKEN=$MEMBER api DELETE "$T/$MINE" "" -H 'If-Match: "v9"'
expect 412 "DELETE with a stale ETag"
TOKEN=$MEMBER api DELETE "$T/$MINE"
expect 204 "the creator deletes their task"
TOKEN=$OWNER api DELETE "$T/$TASK"
expect 204 "the owner deletes a member's task"
TOKEN=$OWNER api GET "$T/$TASK"
expect 404 "a deleted task is gone"
TOKEN=$OWNER api DELETE "$T/$TASK"
expect 404
pass "DELETE: creator, admin or owner; a plain member gets 403 for another's task"
