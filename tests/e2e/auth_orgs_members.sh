#!/usr/bin/env bash
# Organizations and members end to end: creating and listing orgs, 404 for
# non-members on every org path, 403 for members without the role,
# invitations by email that make a member only when the invitee accepts
# (409 twice, 422 unknown, decline), role changes and removals with the
# last-owner rule (409), the seat limit from the plan at invite and at
# accept (402), leaving, and the membership cache following every change at
# once.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve --no-workers

is_problem() { # status code
    expect "$1"
    [ "$(header Content-Type)" = application/problem+json ] || fail "not a problem: $BODY"
    [ "$(jget .code)" = "$2" ] || fail "expected code $2, got: $BODY"
}

new_user owner; O=$TOKEN O_ID=$USER_ID O_PERSONAL=$ORG_ID
new_user admin; A=$TOKEN A_ID=$USER_ID A_EMAIL=$EMAIL
new_user member; M=$TOKEN M_ID=$USER_ID M_EMAIL=$EMAIL
new_user outsider; X=$TOKEN
new_user extra; P_EMAIL=$EMAIL

# ---------------------------------------------------------------- orgs
TOKEN=$O api POST /v1/orgs '{"name":"Acme"}'; expect 201
ORG=$(jget .id)
[ "$(jget .role)" = owner ] && [ "$(jget .name)" = Acme ] && [ "$(jget .created_at)" != null ] || fail "org: $BODY"
[ "$(header Location)" = "/v1/orgs/$ORG" ] || fail "Location: $(header Location)"
TOKEN=$O api POST /v1/orgs '{"name":""}'; is_problem 422 validation_failed
TOKEN=$O api POST /v1/orgs '{"name":"A","plan":"pro"}'; is_problem 422 validation_failed
TOKEN= api POST /v1/orgs '{"name":"A"}'; expect 401
pass "POST /v1/orgs: 201 with the creator as owner; 422 for bad input; 401 without a token"

TOKEN=$O api GET /v1/orgs; expect 200
[ "$(jget '.data | length')" = 2 ] && [ "$(jget .next_cursor)" = null ] || fail "orgs: $BODY"
[ "$(jget "[.data[].id] | sort == ([\"$ORG\", \"$O_PERSONAL\"] | sort)")" = true ] || fail "orgs: $BODY"
TOKEN=$O api GET '/v1/orgs?limit=1'; expect 200
[ "$(jget '.data | length')" = 1 ] && [ "$(jget .next_cursor)" != null ] || fail "page 1: $BODY"
first=$(jget '.data[0].id')
TOKEN=$O api GET "/v1/orgs?limit=1&cursor=$(jget .next_cursor)"; expect 200
[ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0].id')" != "$first" ] && [ "$(jget .next_cursor)" = null ] ||
    fail "page 2: $BODY"
TOKEN=$O api GET '/v1/orgs?limit=0'; is_problem 422 validation_failed
TOKEN=$O api GET '/v1/orgs?cursor=bogus'; is_problem 422 validation_failed
pass "GET /v1/orgs lists the caller's orgs in cursor pages {data, next_cursor}"

TOKEN=$O api GET "/v1/orgs/$ORG"; expect 200
[ "$(jget .role)" = owner ] || fail "get org: $BODY"
TOKEN=$X api GET "/v1/orgs/$ORG"; is_problem 404 not_found
TOKEN=$X api GET "/v1/orgs/$ORG/members"; is_problem 404 not_found
TOKEN=$X api POST "/v1/orgs/$ORG/members" "{\"email\":\"$M_EMAIL\"}"; is_problem 404 not_found
TOKEN=$X api DELETE "/v1/orgs/$ORG/members/$O_ID"; is_problem 404 not_found
TOKEN=$O api GET /v1/orgs/not-a-uuid; is_problem 404 not_found
TOKEN= api GET "/v1/orgs/$ORG"; expect 401
pass "a non-member gets 404 on every org path (and so does a malformed org id); no token is 401"

# ---------------------------------------------------------------- members: invitations
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$A_EMAIL\",\"role\":\"admin\"}"; expect 201
INV_A=$(jget .id)
[ "$(jget .org.id)" = "$ORG" ] && [ "$(jget .org.name)" = Acme ] && [ "$(jget .role)" = admin ] &&
    [ "$(jget .email)" = "$A_EMAIL" ] && [ "$(jget .status)" = pending ] &&
    [ "$(jget .invited_by.id)" = "$O_ID" ] && [ "$(jget .expires_at)" != null ] || fail "invite admin: $BODY"
[ "$(header Location)" = "/v1/me/invitations/$INV_A" ] || fail "Location: $(header Location)"
TOKEN=$A api GET "/v1/orgs/$ORG"; is_problem 404 not_found
TOKEN=$A api GET /v1/me/invitations; expect 200
[ "$(jget '.data | length')" = 1 ] && [ "$(jget '.data[0].id')" = "$INV_A" ] || fail "invitations: $BODY"
TOKEN=$X api GET /v1/me/invitations; expect 200
[ "$(jget '.data | length')" = 0 ] || fail "someone else's invitations: $BODY"
TOKEN=$X api POST "/v1/me/invitations/$INV_A/accept"; is_problem 404 not_found
TOKEN=$X api POST "/v1/me/invitations/$INV_A/decline"; is_problem 404 not_found
TOKEN=$A api POST /v1/me/invitations/not-a-uuid/accept; is_problem 404 not_found
TOKEN=$A api POST "/v1/me/invitations/$INV_A/accept"; expect 200
[ "$(jget .id)" = "$ORG" ] && [ "$(jget .role)" = admin ] || fail "accept: $BODY"
TOKEN=$A api GET "/v1/orgs/$ORG"; expect 200
TOKEN=$A api POST "/v1/me/invitations/$INV_A/accept"; is_problem 409 invitation_closed
TOKEN=$A api GET /v1/me/invitations; [ "$(jget '.data | length')" = 0 ] || fail "answered: $BODY"
pass "an invitation makes no member until the invitee accepts (200 with the org); nobody else sees or answers it (404)"

TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"  ${M_EMAIL^^}\"}"; expect 201
[ "$(jget .role)" = member ] || fail "default role: $BODY"
INV_M=$(jget .id)
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$M_EMAIL\"}"; is_problem 409 already_invited
TOKEN=$M api POST "/v1/me/invitations/$INV_M/decline"; expect 204
TOKEN=$M api GET "/v1/orgs/$ORG"; is_problem 404 not_found
TOKEN=$M api POST "/v1/me/invitations/$INV_M/accept"; is_problem 409 invitation_closed
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$M_EMAIL\"}"; expect 201
TOKEN=$M api POST "/v1/me/invitations/$(jget .id)/accept"; expect 200
pass "a declined invitation changes nothing and a new one may follow; a second pending one is 409 already_invited"

TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$M_EMAIL\",\"role\":\"admin\"}"; is_problem 409 already_member
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$(fresh_email nobody)\"}"; is_problem 422 user_not_found
[ "$(jget '.errors[0].field')" = email ] || fail "unknown email: $BODY"
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$P_EMAIL\",\"role\":\"boss\"}"; is_problem 422 validation_failed
pass "inviting a member is 409 already_member, an unknown email 422, a bad role 422"

TOKEN=$M api GET "/v1/orgs/$ORG"; expect 200
[ "$(jget .role)" = member ] || fail "member view: $BODY"
TOKEN=$M api GET "/v1/orgs/$ORG/members"; expect 200
[ "$(jget '.data | length')" = 3 ] && [ "$(jget .next_cursor)" = null ] || fail "members: $BODY"
[ "$(jget '[.data[] | keys] | unique | .[0] | join(",")')" = "email,name,role,user_id" ] || fail "member shape: $BODY"
TOKEN=$M api GET "/v1/orgs/$ORG/members?limit=2"; expect 200
[ "$(jget '.data | length')" = 2 ] && [ "$(jget .next_cursor)" != null ] || fail "members page: $BODY"
TOKEN=$M api GET "/v1/orgs/$ORG/members?limit=2&cursor=$(jget .next_cursor)"; expect 200
[ "$(jget '.data | length')" = 1 ] || fail "members page 2: $BODY"
pass "members see the org (role member) and the member list in cursor pages"

TOKEN=$M api POST "/v1/orgs/$ORG/members" "{\"email\":\"$P_EMAIL\"}"; is_problem 403 forbidden
TOKEN=$M api PATCH "/v1/orgs/$ORG/members/$A_ID" '{"role":"member"}'; is_problem 403 forbidden
TOKEN=$M api DELETE "/v1/orgs/$ORG/members/$A_ID"; is_problem 403 forbidden
pass "a plain member may not add, change or remove others: 403"

# Owner, admin and member: the free plan's three seats are taken.
TOKEN=$A api POST "/v1/orgs/$ORG/members" "{\"email\":\"$P_EMAIL\"}"
if [ "$STATUS" = 402 ]; then
    is_problem 402 plan_limit_exceeded
    [ "$(jget .limit)" = 3 ] && [ "$(jget .usage)" = 3 ] || fail "limit and usage: $BODY"
    pass "adding a fourth member on the free plan is 402 plan_limit_exceeded with limit 3 and usage 3"
else
    fail "expected 402 for a fourth seat on the free plan, got $STATUS: $BODY"
fi

TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$O_ID" '{"role":"member"}'; is_problem 403 forbidden
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$M_ID" '{"role":"owner"}'; is_problem 403 forbidden
TOKEN=$A api DELETE "/v1/orgs/$ORG/members/$O_ID"; is_problem 403 forbidden
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$M_ID" '{"role":"admin"}'; expect 200
[ "$(jget .role)" = admin ] || fail "promote: $BODY"
TOKEN=$M api GET "/v1/orgs/$ORG"; [ "$(jget .role)" = admin ] || fail "cache kept the old role: $BODY"
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$M_ID" '{"role":"member"}'; expect 200
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$M_ID" '{"role":"chief"}'; is_problem 422 validation_failed
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$O_PERSONAL" '{"role":"member"}'; is_problem 404 not_found
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/nope" '{"role":"member"}'; is_problem 404 not_found
pass "admins change members' roles (200, seen at once) but not owners' and cannot make owners: 403; unknown member 404"

TOKEN=$O api PATCH "/v1/orgs/$ORG/members/$O_ID" '{"role":"admin"}'; is_problem 409 last_owner
TOKEN=$O api DELETE "/v1/orgs/$ORG/members/$O_ID"; is_problem 409 last_owner
TOKEN=$O api PATCH "/v1/orgs/$ORG/members/$A_ID" '{"role":"owner"}'; expect 200
TOKEN=$O api PATCH "/v1/orgs/$ORG/members/$O_ID" '{"role":"admin"}'; expect 200
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$A_ID" '{"role":"member"}'; is_problem 409 last_owner
TOKEN=$A api PATCH "/v1/orgs/$ORG/members/$O_ID" '{"role":"owner"}'; expect 200
pass "the last owner can be neither demoted nor removed (409 last_owner); with two owners one may step down"

TOKEN=$M api GET "/v1/orgs/$ORG"; expect 200 # warms the membership cache
TOKEN=$A api DELETE "/v1/orgs/$ORG/members/$M_ID"; expect 204
TOKEN=$M api GET "/v1/orgs/$ORG"; is_problem 404 not_found
TOKEN=$A api DELETE "/v1/orgs/$ORG/members/$M_ID"; is_problem 404 not_found
pass "removing a member is 204 and takes effect at once (cache invalidated): the removed member gets 404"

# Two members now: a pending invitation holds the third seat, so a fourth
# invitation is refused at once; a seat taken meanwhile is refused at accept.
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$P_EMAIL\"}"; expect 201
INV_P=$(jget .id)
new_user late; L_EMAIL=$EMAIL
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$L_EMAIL\"}"; is_problem 402 plan_limit_exceeded
[ "$(jget .usage)" = 3 ] || fail "pending invitations count as seats: $BODY"
TOKEN=$O api GET "/v1/orgs/$ORG/invitations"; expect 200
[ "$(jget '[.data[].id] | join(",")')" = "$INV_P" ] || fail "the org's pending invitations: $BODY"
TOKEN=$X api GET "/v1/orgs/$ORG/invitations"; is_problem 404 not_found
TOKEN=$X api DELETE "/v1/orgs/$ORG/invitations/$INV_P"; is_problem 404 not_found
TOKEN=$O api DELETE "/v1/orgs/$ORG/invitations/$INV_P"; expect 204
TOKEN=$O api DELETE "/v1/orgs/$ORG/invitations/$INV_P"; is_problem 404 not_found
login "$P_EMAIL"; P=$TOKEN
TOKEN=$P api POST "/v1/me/invitations/$INV_P/accept"; is_problem 409 invitation_closed
TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$L_EMAIL\"}"; expect 201
TOKEN=$O api DELETE "/v1/orgs/$ORG/invitations/$(jget .id)"; expect 204
pass "admins list and revoke pending invitations (204, then 404); a revoked one cannot be accepted and frees its seat"

TOKEN=$O api POST "/v1/orgs/$ORG/members" "{\"email\":\"$P_EMAIL\"}"; expect 201
INV_P=$(jget .id)
X_ID=$(TOKEN=$X api GET /v1/me; jget .id)
psql "${DATABASE_URL:?}" -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE bh_auth" \
    -c "INSERT INTO auth.members (org_id, user_id, role) VALUES ('$ORG', '$X_ID', 'member')" >/dev/null
login "$P_EMAIL"; P=$TOKEN P_ID=$USER_ID
TOKEN=$P api POST "/v1/me/invitations/$INV_P/accept"; is_problem 402 plan_limit_exceeded
psql "${DATABASE_URL:?}" -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE bh_auth" \
    -c "DELETE FROM auth.members WHERE org_id = '$ORG' AND user_id = '$X_ID'" >/dev/null
TOKEN=$P api POST "/v1/me/invitations/$INV_P/accept"; expect 200
pass "the seat limit holds at invite (pending invitations count) and again at accept: 402"

TOKEN=$P api DELETE "/v1/orgs/$ORG/members/$P_ID"; expect 204
TOKEN=$P api GET "/v1/orgs/$ORG"; is_problem 404 not_found
pass "a freed seat can be filled again, and a member may leave on their own (204)"
