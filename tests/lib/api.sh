# Shell helpers for tests that need users, sessions and organizations
# (sourced after tests/lib/common.sh, with a server started by bh_start).
#
#   signup EMAIL [NAME]       sign up with $BH_TEST_PASSWORD; exports TOKEN,
#                             REFRESH, USER_ID, ORG_ID (the personal org) and EMAIL
#   login EMAIL [PASSWORD]    log in; exports TOKEN, REFRESH, USER_ID, EMAIL
#   fresh_email [PREFIX]      prints an address no other test uses
#   new_user [PREFIX]         signup with a fresh address (and a name)
#   new_org NAME              creates an org as $TOKEN; exports NEW_ORG_ID
#   invite ORG EMAIL [ROLE]   invites an existing user as $TOKEN (expects 201);
#                             exports INVITATION_ID
#   accept_invitation ID [TOKEN]  accepts as TOKEN (default $TOKEN; expects 200)
#   invite_and_accept ORG EMAIL [ROLE]  both: the invitee answers with the
#                             token their signup or last login here got (or
#                             logs in again with $BH_TEST_PASSWORD)
#   add_member ORG EMAIL ROLE the same as invite_and_accept
#
# Argon2 makes each signup and login cost ~0.1 s of CPU: create the few
# users a test needs, not hundreds.

# Twelve characters or more, as signup requires.
BH_TEST_PASSWORD=${BH_TEST_PASSWORD:-"correct horse battery staple"}

# The last access token each address got from signup or login in this shell,
# so that a helper can act as an invitee without logging in again.
declare -gA BH_TOKEN_OF

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
    BH_TOKEN_OF[$EMAIL]=$TOKEN
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
    BH_TOKEN_OF[$EMAIL]=$TOKEN
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

invite() {
    api POST "/v1/orgs/$1/members" "{\"email\":$(_json_str "$2"),\"role\":$(_json_str "${3:-member}")}"
    [ "$STATUS" = 201 ] || fail "invite $2 to $1: expected 201, got $STATUS: $BODY"
    export INVITATION_ID
    INVITATION_ID=$(jget .id)
}

accept_invitation() {
    TOKEN=${2:-$TOKEN} api POST "/v1/me/invitations/$1/accept"
    [ "$STATUS" = 200 ] || fail "accept invitation $1: expected 200, got $STATUS: $BODY"
}

invite_and_accept() {
    local org=$1 email=$2 role=${3:-member} invitee
    invite "$org" "$email" "$role"
    email=$(jget .email) # as auth normalised it
    invitee=${BH_TOKEN_OF[$email]:-}
    if [ -n "$invitee" ]; then
        TOKEN=$invitee api POST "/v1/me/invitations/$INVITATION_ID/accept"
        [ "$STATUS" = 401 ] || { [ "$STATUS" = 200 ] || fail "accept as $email: $STATUS $BODY"; return 0; }
    fi
    # No token of theirs here (or it was revoked): log in as them, in a
    # subshell so that the caller's TOKEN and USER_ID stay.
    invitee=$(login "$email" >/dev/null && printf '%s' "$TOKEN") || fail "log in as $email"
    BH_TOKEN_OF[$email]=$invitee
    accept_invitation "$INVITATION_ID" "$invitee"
}

# Adding a member is an invitation the invitee accepts.
add_member() { invite_and_accept "$@"; }
