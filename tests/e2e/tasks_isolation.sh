#!/usr/bin/env bash
# A task of org A is invisible from org B: every path answers 404 (never 403,
# never a hint), and no filter of B's lists reaches A's tasks, projects or
# people. A member of both orgs sees each task only under its own org.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

bh_start

read -r ALICE ORG_A ALICE_ID ALICE_EMAIL <<<"$(tasks_signup alice)"
read -r BOB ORG_B BOB_ID _ <<<"$(tasks_signup bob)"

TOKEN=$ALICE api POST "/v1/orgs/$ORG_A/projects" '{"name":"Secret"}'
expect 201
PROJECT_A=$(jget .id)
TOKEN=$ALICE api POST "/v1/orgs/$ORG_A/tasks" '{"title":"A only","project_id":"'"$PROJECT_A"'","assignee_id":"'"$ALICE_ID"'"}'
expect 201
TASK_A=$(jget .id)
TOKEN=$ALICE api GET "/v1/orgs/$ORG_A/tasks/$TASK_A" # warm the cache
expect 200

# Bob, outside org A, through his own org's paths.
B="/v1/orgs/$ORG_B"
for call in "GET $B/tasks/$TASK_A" "PATCH $B/tasks/$TASK_A" "DELETE $B/tasks/$TASK_A" \
            "GET $B/tasks/$TASK_A/comments" "POST $B/tasks/$TASK_A/comments" \
            "GET $B/projects/$PROJECT_A" "PATCH $B/projects/$PROJECT_A" "DELETE $B/projects/$PROJECT_A"; do
  read -r method path <<<"$call"
  body=""
  [ "$method" = PATCH ] && body='{"title":"mine now"}'
  [ "$path" != "${path%comments}" ] && [ "$method" = POST ] && body='{"body":"hi"}'
  [ "$path" != "${path#*/projects/}" ] && [ "$method" = PATCH ] && body='{"name":"mine now"}'
  TOKEN=$BOB api "$method" "$path" "$body"
  expect 404 "$call from org B"
done
pass "from org B, every path to org A's task and project answers 404"

# Bob, through org A's paths: he is not a member.
A="/v1/orgs/$ORG_A"
for call in "GET $A/tasks" "GET $A/tasks/$TASK_A" "GET $A/projects" "POST $A/tasks"; do
  read -r method path <<<"$call"
  body=""
  [ "$method" = POST ] && body='{"title":"sneaky"}'
  TOKEN=$BOB api "$method" "$path" "$body"
  expect 404 "$call by a non-member"
done
pass "a non-member gets 404 on org A's collections too"

TOKEN=$BOB api GET "$B/tasks?project_id=$PROJECT_A"
expect 404 "project filter across orgs"
TOKEN=$BOB api GET "$B/tasks?assignee_id=$ALICE_ID"
expect 200
[ "$(jget '.data | length')" = 0 ] || fail "assignee filter leaked: $BODY"
TOKEN=$BOB api GET "$B/tasks?q=A%20only"
[ "$(jget '.data | length')" = 0 ] || fail "search leaked: $BODY"
TOKEN=$BOB api POST "$B/tasks" '{"title":"x","project_id":"'"$PROJECT_A"'"}'
expect 422 "a task in B pointing at A's project"
[ "$(jget '.errors[0].field')" = project_id ] || fail "field: $BODY"
TOKEN=$BOB api POST "$B/tasks" '{"title":"x"}'
expect 201
TASK_B=$(jget .id)
TOKEN=$BOB api PATCH "$B/tasks/$TASK_B" '{"project_id":"'"$PROJECT_A"'"}'
expect 422 "moving B's task into A's project"
TOKEN=$BOB api PATCH "$B/tasks/$TASK_B" '{"assignee_id":"'"$ALICE_ID"'"}'
expect 422 "assigning B's task to a member of A only"
pass "filters and references never cross orgs: 404 / empty / 422, never A's data"

# Bob joins org A: now he sees the task, but only under org A.
TOKEN=$ALICE tasks_add_member "$ORG_A" "$(TOKEN=$BOB api GET /v1/me; jget .email)" member
TOKEN=$BOB api GET "$A/tasks/$TASK_A"
expect 200 "a member of A reads A's task"
TOKEN=$BOB api GET "$B/tasks/$TASK_A"
expect 404 "the same task under org B, with a warm cache entry"
TOKEN=$ALICE api GET "$A/tasks/$TASK_B"
expect 404 "Alice, not in B, under A's path"
pass "a member of both orgs sees each task only under its own org"
