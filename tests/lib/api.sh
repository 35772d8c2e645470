# Shell helpers for tests that need users, sessions and organizations
# (sourced after tests/lib/common.sh, with a server started by bh_start).
#
#   signup EMAIL [NAME]       sign up with $BH_TEST_PASSWORD; exports TOKEN,
#                             REFRESH, USER_ID, ORG_ID (the personal org) and EMAIL
#   login EMAIL [PASSWORD]    log in; exports TOKEN, REFRESH, USER_ID, EMAIL
#   fresh_email [PREFIX]      prints an address no other test uses
#   new_user [PREFIX]         signup with a fresh address (and a name)
#   new_org NAME              creates an org as $TOKEN; exports NEW_ORG_ID
#   add_member ORG EMAIL ROLE adds an existing user as $TOKEN (expects 201)
#
# Argon2 makes each signup and login cost ~0.1 s of CPU: create the few
# users a test needs, not hundreds.

# Twelve characters or more, as signup requires.
BH_TEST_PASSWORD=${BH_TEST_PASSWORD:-"correct horse battery staple"}

fresh_email() {
    printf '%s-%s-%s@example.test' "${1:-user}" "$(date +%s%N)" "$RANDOM"
}

# _json_str TEXT: TEXT as a JSON string literal.
_json_str() { jq -Rn --arg v "$1" '$v'; }

signup() {
    local email=$1 name=${2:-"Test User"}
    local saved=${TOKEN:-}
    TOKEN=
    api POST /v1/auth/signup "{\"email\":$(_json_str "$email"),\"password\":$(_json_str "$BH_TEST_PASSWORD"),\"name\":$(_json_str "$name")}"
    if [ "$STATUS" != 201 ]; then
        TOKEN=$saved
        fail "signup $email: expected 201, got $STATUS: $BODY"
    fi
    export TOKEN REFRESH USER_ID ORG_ID EMAIL
    TOKEN=$(jget .access_token)
    REFRESH=$(jget .refresh_token)
    USER_ID=$(jget .user.id)
    ORG_ID=$(jget .org.id)
    EMAIL=$(jget .user.email)
}

login() {
    local email=$1 password=${2:-$BH_TEST_PASSWORD}
    local saved=${TOKEN:-}
    TOKEN=
    api POST /v1/auth/login "{\"email\":$(_json_str "$email"),\"password\":$(_json_str "$password")}"
    if [ "$STATUS" != 200 ]; then
        TOKEN=$saved
        fail "login $email: expected 200, got $STATUS: $BODY"
    fi
    export TOKEN REFRESH USER_ID EMAIL
    TOKEN=$(jget .access_token)
    REFRESH=$(jget .refresh_token)
    USER_ID=$(jget .user.id)
    EMAIL=$(jget .user.email)
}

new_user() {
    signup "$(fresh_email "${1:-user}")" "${1:-Test} User"
}

new_org() {
    api POST /v1/orgs "{\"name\":$(_json_str "$1")}"
    [ "$STATUS" = 201 ] || fail "create org $1: expected 201, got $STATUS: $BODY"
    export NEW_ORG_ID
    NEW_ORG_ID=$(jget .id)
}

add_member() {
    api POST "/v1/orgs/$1/members" "{\"email\":$(_json_str "$2"),\"role\":$(_json_str "${3:-member}")}"
    [ "$STATUS" = 201 ] || fail "add $2 to $1: expected 201, got $STATUS: $BODY"
}
