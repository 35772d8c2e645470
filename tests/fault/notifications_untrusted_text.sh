#!/usr/bin/env bash
# Text one user writes and another user's email carries: user names, org
# and project names and task titles are one line each. A control character
# (CR, LF, TAB, ESC, DEL, C1) or a Unicode line separator is a 422 naming
# the field, so nobody can break another user's email headers. A stored
# value the mail composer still refuses (a row written around the API) is
# never dropped in silence: the email job ends in the dead letters, and the
# delivery says why. It runs alone: the email job must be retried by this
# server's worker, with its fast backoff, not by another test's server that
# shares the queue.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"

# Fast retries, so that the job's attempts run out within the test.
BULKHEAD_JOBS_BACKOFF_BASE_MS=1 BULKHEAD_JOBS_BACKOFF_MAX_MS=20 bh_start

# refused FIELD: the last answer is a 422 with an error on FIELD.
refused() {
    expect 422 "${LAST_REQUEST}"
    jq -e --arg f "$1" '.errors | any(.field == $f)' <<<"$BODY" >/dev/null ||
        fail "$LAST_REQUEST: no error on $1: $BODY"
}

TOKEN= api POST /v1/auth/signup "{\"email\":\"$(fresh_email eve)\",\"password\":\"$BH_TEST_PASSWORD\",\"name\":\"Eve\\r\\nBcc: x@example.test\"}"
refused name
new_user owner
OWNER=$TOKEN ORG=$ORG_ID OWNER_ID=$USER_ID
api PATCH /v1/me '{"name":"Ada\nLovelace"}'
refused name
api POST /v1/orgs '{"name":"Acme\u001b[31m"}'
refused name
api POST /v1/orgs '{"name":"Acme\u2028Pay now"}'
refused name
pass "names with CR/LF, ESC or U+2028 are a 422 naming the field"

for title in 'Fix\r\nBcc: x@example.test' 'Tab\there' 'Del\u007f' 'C1\u0085next' 'Para\u2029graph'; do
    api POST "/v1/orgs/$ORG/tasks" "{\"title\":\"$title\"}"
    refused title
done
api POST "/v1/orgs/$ORG/tasks" '{"title":"Caf\u00e9 \u2615 =?UTF-8?B?eA==?="}'
expect 201 "a title with non-ASCII text and an encoded word"
TASK=$(jget .id)
api PATCH "/v1/orgs/$ORG/tasks/$TASK" '{"title":"a\nb"}' -H 'If-Match: "v1"'
refused title
api POST "/v1/orgs/$ORG/projects" '{"name":"P\r\nQ"}'
refused name
pass "task titles and project names with control characters are a 422 naming the field; Unicode text is fine"

# --- an email that cannot be composed ends in the dead letters -------------------
new_user victim
VICTIM_ID=$USER_ID VICTIM_EMAIL=$EMAIL
TOKEN=$OWNER add_member "$ORG" "$VICTIM_EMAIL" member
# A name stored before names were checked (or written around the API).
as_role bh_auth "UPDATE auth.users SET name = E'Vic\\r\\nBcc: x@example.test' WHERE id = '$VICTIM_ID'" >/dev/null
dead_before=$("$BH_BIN" jobs dead --queue email --json 2>/dev/null | grep -c send_email || true)
TOKEN=$OWNER api POST "/v1/orgs/$ORG/tasks" '{"title":"Broken header","assignee_id":"'"$VICTIM_ID"'"}'
expect 201
delivery_state() {
    as_role bh_notifications "SELECT status || ' ' || coalesce(last_error, '') FROM notifications.deliveries
        WHERE user_id = '$VICTIM_ID' AND subject LIKE '%Broken header%'"
}
dead_now() { [ "$("$BH_BIN" jobs dead --queue email --json 2>/dev/null | grep -c send_email || true)" -gt "$dead_before" ]; }
eventually 30 dead_now || fail "no dead letter for the email; delivery: $(delivery_state)"
[ "$(delivery_state)" = "pending message could not be composed" ] ||
    fail "delivery: $(delivery_state)"
pass "an email that cannot be composed is a dead letter (bulkhead jobs dead), its delivery pending with the reason"
