#!/usr/bin/env bash
# Projects (unique names per org, rename, delete only when empty) and the
# comments of a task (1-5,000 characters, oldest first, cursor pages).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

bh_start

read -r OWNER ORG OWNER_ID _ <<<"$(tasks_signup owner)"
read -r MEMBER _ MEMBER_ID MEMBER_EMAIL <<<"$(tasks_signup member)"
TOKEN=$OWNER tasks_add_member "$ORG" "$MEMBER_EMAIL" member
P="/v1/orgs/$ORG/projects"

# --- projects -----------------------------------------------------------------
TOKEN=$MEMBER api POST "$P" '{"name":"Website"}'
expect 201 "create a project"
PROJECT=$(jget .id)
[ "$(header Location)" = "$P/$PROJECT" ] || fail "Location: $(header Location)"
[ "$(jget .org_id)" = "$ORG" ] && [ "$(jget .name)" = Website ] || fail "project: $BODY"
TOKEN=$OWNER api POST "$P" '{"name":"Website"}'
expect 409 "same name twice in one org"
[ "$(jget .code)" = project_name_taken ] || fail "code: $BODY"
read -r OTHER OTHER_ORG _ _ <<<"$(tasks_signup other)"
TOKEN=$OTHER api POST "/v1/orgs/$OTHER_ORG/projects" '{"name":"Website"}'
expect 201 "the same name in another org"
for body in '{}' '{"name":""}' "{\"name\":\"$(printf 'p%.0s' $(seq 1 101))\"}" '{"name":"x","colour":1}'; do
  TOKEN=$OWNER api POST "$P" "$body"
  expect 422 "project body $body"
done
pass "project names are unique per org (409 project_name_taken) and 1-100 characters"

TOKEN=$OWNER api POST "$P" '{"name":"Mobile"}'
expect 201
MOBILE=$(jget .id)
TOKEN=$OWNER api PATCH "$P/$MOBILE" '{"name":"Website"}'
expect 409 "rename onto a taken name"
TOKEN=$OWNER api PATCH "$P/$MOBILE" '{"name":"Apps"}'
expect 200
[ "$(jget .name)" = Apps ] || fail "rename: $BODY"
TOKEN=$MEMBER api GET "$P/$MOBILE"
expect 200
[ "$(jget .name)" = Apps ] || fail "GET after rename: $BODY"
TOKEN=$MEMBER api GET "$P?limit=1"
expect 200
[ "$(jget '.data | length')" = 1 ] && [ "$(jget .next_cursor)" != null ] || fail "project page: $BODY"
TOKEN=$MEMBER api GET "$P?cursor=$(jget .next_cursor)"
[ "$(jget '.data | length')" = 1 ] && [ "$(jget .next_cursor)" = null ] || fail "second project page: $BODY"
pass "projects are renamed, read and listed with cursor pages"

TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"in website","project_id":"'"$PROJECT"'"}'
expect 201
TASK=$(jget .id)
TOKEN=$OWNER api DELETE "$P/$PROJECT"
expect 409 "delete a project that has tasks"
[ "$(jget .code)" = project_not_empty ] || fail "code: $BODY"
TOKEN=$MEMBER api DELETE "$P/$MOBILE"
expect 403 "a member deletes the owner's project"
TOKEN=$OWNER api DELETE "$P/$MOBILE"
expect 204
TOKEN=$OWNER api GET "$P/$MOBILE"
expect 404
TOKEN=$OWNER api PATCH "/v1/orgs/$ORG/tasks/$TASK" '{"project_id":null}'
expect 200
TOKEN=$MEMBER api DELETE "$P/$PROJECT"
expect 204 "the creator deletes the emptied project"
pass "a project with tasks is not deleted (409 project_not_empty); empty ones are, by creator, admin or owner"

# --- comments -------------------------------------------------------------------
C="/v1/orgs/$ORG/tasks/$TASK/comments"
for i in 1 2 3; do
  TOKEN=$MEMBER api POST "$C" "{\"body\":\"comment $i\"}"
  expect 201 "comment $i"
done
[ "$(jget .author_id)" = "$MEMBER_ID" ] && [ "$(jget .task_id)" = "$TASK" ] || fail "comment: $BODY"
for body in '{}' '{"body":""}' "{\"body\":\"$(head -c 5001 /dev/zero | tr '\0' c)\"}"; do
  TOKEN=$MEMBER api POST "$C" "$body"
  expect 422 "comment body of ${#body} bytes"
done
TOKEN=$MEMBER api POST "$C" "{\"body\":\"$(head -c 5000 /dev/zero | tr '\0' c)\"}"
expect 201 "a comment of exactly 5,000 characters"
TOKEN=$OWNER api GET "$C?limit=2"
expect 200
[ "$(jget '.data[0].body')" = "comment 1" ] && [ "$(jget '.data[1].body')" = "comment 2" ] || fail "oldest first: $BODY"
TOKEN=$OWNER api GET "$C?limit=2&cursor=$(jget .next_cursor)"
[ "$(jget '.data[0].body')" = "comment 3" ] && [ "$(jget .next_cursor)" = null ] || fail "second page: $BODY"
TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks/00000000-0000-4000-8000-000000000000/comments" '{"body":"hi"}'
expect 404 "comment on a task that does not exist"
TOKEN=$OWNER api DELETE "/v1/orgs/$ORG/tasks/$TASK"
expect 204
TOKEN=$OWNER api GET "$C"
expect 404 "comments of a deleted task"
pass "comments: 1-5,000 characters, oldest first with cursor pages, gone with their task"
