#!/usr/bin/env bash
# What auth's transactions carry beyond auth: signup and POST /v1/orgs give
# the new organization its free subscription (billing, through the
# org-created hook, same transaction), and the events auth publishes on its
# transactions reach their consumers (a welcome for user.signed_up, a
# notice for member.added; billing counting seats from member.added and
# member.removed), relayed by the server's own workers.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve

# wait_for PATH JQ: polls GET PATH (as $TOKEN) until JQ is true, for 10 s.
wait_for() {
    for _ in $(seq 1 50); do
        api GET "$1"
        [ "$STATUS" = 200 ] && [ "$(jget "$2")" = true ] && return 0
        sleep 0.2
    done
    fail "GET $1 never satisfied $2: $STATUS $BODY"
}

new_user hooks; OWNER=$TOKEN PERSONAL=$ORG_ID
api GET "/v1/orgs/$PERSONAL/subscription"; expect 200
[ "$(jget .plan_id)" = free ] || fail "personal org subscription: $BODY"
new_org "Hooked"
api GET "/v1/orgs/$NEW_ORG_ID/subscription"; expect 200
[ "$(jget .plan_id)" = free ] || fail "new org subscription: $BODY"
pass "signup's personal org and POST /v1/orgs both start with the free subscription (org-created hook)"

wait_for /v1/me/notifications '[.data[].type] | index("user.signed_up") != null'
pass "user.signed_up reached notifications: the new user has a welcome"

new_user joiner; JOINER=$TOKEN JOINER_EMAIL=$EMAIL JOINER_ID=$USER_ID
TOKEN=$OWNER add_member "$NEW_ORG_ID" "$JOINER_EMAIL" member
TOKEN=$JOINER wait_for /v1/me/notifications '[.data[].type] | index("member.added") != null'
pass "member.added reached notifications: the added user is told"

# member.added and member.removed also reach billing, which keeps the seat
# count of GET /usage from them.
TOKEN=$OWNER wait_for "/v1/orgs/$NEW_ORG_ID/usage" '.members.used == 2'
TOKEN=$OWNER api DELETE "/v1/orgs/$NEW_ORG_ID/members/$JOINER_ID"
expect 204 "remove the joiner"
TOKEN=$OWNER wait_for "/v1/orgs/$NEW_ORG_ID/usage" '.members.used == 1'
pass "member.added and member.removed reached billing: the org's seats went 2, then 1"
