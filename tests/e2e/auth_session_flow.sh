#!/usr/bin/env bash
# Sessions end to end with curl: signup (validation, 409 on a taken email),
# login (one 401 for unknown email and wrong password), refresh rotation,
# the grace window, reuse detection revoking the family, two concurrent
# refreshes making one child, logout, logout-all, and a password change.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
# A slow build (scripts/test-tsan) needs a longer window for its replay.
GRACE=${BH_TEST_REFRESH_GRACE_S:-2}
export BULKHEAD_REFRESH_GRACE_S=$GRACE
bh_start serve --no-workers

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# SQL as the auth module's role (tests may look behind the API).
auth_sql() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE bh_auth" -c "$1"; }
refresh() { local t=$TOKEN; TOKEN=; api POST /v1/auth/refresh "{\"refresh_token\":\"$1\"}"; TOKEN=$t; }
is_problem() { # status code
    expect "$1"
    [ "$(header Content-Type)" = application/problem+json ] || fail "not a problem: $BODY"
    [ "$(jget .code)" = "$2" ] || fail "expected code $2, got: $BODY"
}

# ---------------------------------------------------------------- signup
email=$(fresh_email ada)
TOKEN= api POST /v1/auth/signup "{\"email\":\"$email\",\"password\":\"short-pass1\",\"name\":\"Ada\"}"
is_problem 422 validation_failed
[ "$(jget '.errors[0].field')" = password ] || fail "11-char password: $BODY"
TOKEN= api POST /v1/auth/signup "{\"email\":\"$email\",\"password\":\"$(printf 'p%.0s' {1..129})\",\"name\":\"Ada\"}"
is_problem 422 validation_failed
TOKEN= api POST /v1/auth/signup '{"email":"not-an-email","password":"correct horse battery","name":"Ada"}'
is_problem 422 validation_failed
[ "$(jget '.errors[0].field')" = email ] || fail "bad email: $BODY"
TOKEN= api POST /v1/auth/signup "{\"email\":\"$email\",\"password\":\"correct horse battery\"}"
is_problem 422 validation_failed
[ "$(jget '.errors[0].field')" = name ] || fail "missing name: $BODY"
TOKEN= api POST /v1/auth/signup "{\"email\":\"$email\",\"password\":\"correct horse battery\",\"name\":\"Ada\",\"role\":\"owner\"}"
is_problem 422 validation_failed
pass "signup refuses short (11) and long (129) passwords, bad emails, missing and unknown fields: 422"

long_pw=$(printf 'x%.0s' {1..64})
upper=$(tr 'a-z' 'A-Z' <<<"$email")
TOKEN= api POST /v1/auth/signup "{\"email\":\"  $upper \",\"password\":\"$long_pw\",\"name\":\"Ada\"}"
expect 201
[ "$(jget .user.email)" = "$email" ] || fail "email not normalised: $BODY"
[ "$(jget .token_type)" = Bearer ] && [ "$(jget .expires_in)" = 900 ] || fail "token fields: $BODY"
[ "$(jget .org.role)" = owner ] && [ "$(jget .org.id)" != null ] || fail "personal org: $BODY"
for f in id email name created_at; do
    [ "$(jget ".user.$f")" != null ] || fail "user.$f missing: $BODY"
done
[ "$(header Cache-Control)" = no-store ] || fail "tokens must not be cached"
[ "$(jget .refresh_token | wc -c)" = 44 ] || fail "refresh token is not 43 characters: $BODY"
ADA_REFRESH=$(jget .refresh_token) ADA_ORG=$(jget .org.id)
[ "$(auth_sql "select count(*) from auth.refresh_tokens where token_hash = '$(sha256 "$ADA_REFRESH")'")" = 1 ] ||
    fail "the refresh token is not stored as its SHA-256"
[ "$(auth_sql "select count(*) from auth.refresh_tokens where token_hash = '$ADA_REFRESH'")" = 0 ] ||
    fail "the refresh token is stored in clear"
auth_sql "select password_hash from auth.users where email = '$email'" | grep -q '^\$argon2id\$v=19\$m=19456,t=2' ||
    fail "password not stored as Argon2id (m=19 MiB, t=2)"
pass "signup normalises the email, accepts a 64-char password, answers 201 with user, owner org and tokens"

TOKEN= api POST /v1/auth/signup "{\"email\":\"$upper\",\"password\":\"another good password\",\"name\":\"Eve\"}"
is_problem 409 email_taken
pass "signing up a taken email (any case) is 409 email_taken"

# ---------------------------------------------------------------- login
login "$email" "$long_pw"
[ "$(jget .user.id)" != null ] && [ "$(jget .token_type)" = Bearer ] || fail "login body: $BODY"
[ -n "$(header RateLimit-Limit)" ] && [ -n "$(header RateLimit-Remaining)" ] || fail "login has no RateLimit headers"
pass "login answers 200 with tokens and user, and RateLimit headers"

time_login() { # email password -> sets BODY etc.; prints milliseconds
    local t0 t1
    t0=$(date +%s%N)
    TOKEN= api POST /v1/auth/login "{\"email\":\"$1\",\"password\":\"$2\"}"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
wrong_ms=0 unknown_ms=0
for i in 1 2; do
    ms=$(time_login "$email" "wrong password here"); wrong_ms=$((wrong_ms + ms))
    time_login "$email" "wrong password here" >/dev/null
    expect 401; wrong_body=$(jq -c 'del(.request_id)' <<<"$BODY")
    ms=$(time_login "nobody-$(date +%s%N)@example.test" "wrong password here"); unknown_ms=$((unknown_ms + ms))
    time_login "nobody-$(date +%s%N)@example.test" "wrong password here" >/dev/null
    expect 401; unknown_body=$(jq -c 'del(.request_id)' <<<"$BODY")
    [ "$wrong_body" = "$unknown_body" ] || fail "401 bodies differ: $wrong_body vs $unknown_body"
    login "$email" "$long_pw" # resets the account's failure count
done
[ "$(jq -r .code <<<"$wrong_body")" = invalid_credentials ] || fail "code: $wrong_body"
echo "# timing: wrong password ${wrong_ms} ms, unknown email ${unknown_ms} ms (2 logins each)"
[ $((unknown_ms * 3)) -ge "$wrong_ms" ] || fail "unknown email is much faster than a wrong password"
pass "unknown email and wrong password give the identical 401 invalid_credentials in similar time"

# ---------------------------------------------------------------- refresh
login "$email" "$long_pw"
R0=$REFRESH A0=$TOKEN
refresh "$R0"; expect 200
R1=$(jget .refresh_token) A1=$(jget .access_token)
[ "$R1" != "$R0" ] && [ "$A1" != "$A0" ] && [ "$(jget .token_type)" = Bearer ] || fail "rotation: $BODY"
[ "$(jget .user)" = null ] || true
TOKEN=$A1 api GET /v1/me; expect 200
pass "refresh rotates: a new refresh token and a working access token"

refresh "$R0"; expect 200
[ "$(jget .refresh_token)" = "$R1" ] || fail "grace replay made a new branch: $BODY"
pass "replaying the rotated token within the grace window returns the current child, not a new branch"

sleep "$GRACE.5"
refresh "$R0"
is_problem 401 refresh_token_reused
refresh "$R1"
is_problem 401 invalid_refresh_token
TOKEN=$A1 api GET /v1/me
expect 401
grep -q 'error="invalid_token"' <(header WWW-Authenticate) || fail "no invalid_token challenge"
pass "reuse after the grace window revokes the family: 401, the newest token and its access token refused too"

refresh "not-a-token"; is_problem 401 invalid_refresh_token
refresh "$(printf 'A%.0s' {1..43})"; is_problem 401 invalid_refresh_token
TOKEN= api POST /v1/auth/refresh '{}'; is_problem 422 validation_failed
pass "unknown refresh tokens are 401 invalid_refresh_token, a missing one 422"

# Two refreshes of one token at the same moment: one child, both get it.
login "$email" "$long_pw"
RC=$REFRESH
pids=()
for i in 1 2 3; do
    curl -sS -o "$BH_TMP/conc$i" -H 'Content-Type: application/json' \
        --data-binary "{\"refresh_token\":\"$RC\"}" "$BH_URL/v1/auth/refresh" &
    pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a background job too
children=$(for i in 1 2 3; do jq -r .refresh_token "$BH_TMP/conc$i"; done | sort -u)
[ "$(wc -l <<<"$children")" = 1 ] && [ "$children" != null ] || fail "concurrent refreshes: $(cat "$BH_TMP"/conc*)"
n=$(auth_sql "select count(*) from auth.refresh_tokens where session_id =
    (select session_id from auth.refresh_tokens where token_hash = '$(sha256 "$RC")')")
[ "$n" = 2 ] || fail "expected the token and exactly one child, found $n rows"
pass "three concurrent refreshes of one token create exactly one child (row lock), all get it"

# ---------------------------------------------------------------- logout
login "$email" "$long_pw"; S1_A=$TOKEN S1_R=$REFRESH
login "$email" "$long_pw"; S2_A=$TOKEN S2_R=$REFRESH
TOKEN=$S1_A api POST /v1/auth/logout; expect 204
TOKEN=$S1_A api GET /v1/me; expect 401
refresh "$S1_R"; is_problem 401 invalid_refresh_token
TOKEN=$S2_A api GET /v1/me; expect 200
pass "logout (204) ends this session only: its access and refresh tokens are refused, others live"

login "$email" "$long_pw"; S3_A=$TOKEN S3_R=$REFRESH
TOKEN=$S3_A api POST /v1/auth/logout-all; expect 204
for a in "$S2_A" "$S3_A"; do TOKEN=$a api GET /v1/me; expect 401; done
for r in "$S2_R" "$S3_R"; do refresh "$r"; is_problem 401 invalid_refresh_token; done
TOKEN= api POST /v1/auth/logout; expect 401
pass "logout-all (204) ends every session of the user; logout without a token is 401"

# ---------------------------------------------------------------- me
login "$email" "$long_pw"; M1_A=$TOKEN
TOKEN=$M1_A api GET /v1/me; expect 200
[ "$(jget .email)" = "$email" ] && [ "$(jget '.memberships[0].id')" = "$ADA_ORG" ] &&
    [ "$(jget '.memberships[0].role')" = owner ] || fail "me: $BODY"
TOKEN=$M1_A api PATCH /v1/me '{"name":"Ada Lovelace"}'; expect 200
[ "$(jget .name)" = "Ada Lovelace" ] || fail "rename: $BODY"
TOKEN=$M1_A api PATCH /v1/me '{"email":"x@y.z"}'; is_problem 422 validation_failed
TOKEN=$M1_A api PATCH /v1/me '{"name":"   "}'; is_problem 422 validation_failed
pass "GET /v1/me has the user and memberships; PATCH /v1/me renames and refuses other fields"

login "$email" "$long_pw"; M2_A=$TOKEN M2_R=$REFRESH
TOKEN=$M1_A api POST /v1/me/password '{"current_password":"wrong password!","new_password":"a brand new password"}'
is_problem 422 validation_failed
[ "$(jget '.errors[0].field')" = current_password ] || fail "wrong current password: $BODY"
TOKEN=$M1_A api POST /v1/me/password "{\"current_password\":\"$long_pw\",\"new_password\":\"short\"}"
is_problem 422 validation_failed
TOKEN=$M1_A api POST /v1/me/password "{\"current_password\":\"$long_pw\",\"new_password\":\"a brand new password\"}"
expect 204
TOKEN=$M2_A api GET /v1/me; expect 401
refresh "$M2_R"; is_problem 401 invalid_refresh_token
TOKEN=$M1_A api GET /v1/me; expect 200
TOKEN= api POST /v1/auth/login "{\"email\":\"$email\",\"password\":\"$long_pw\"}"; is_problem 401 invalid_credentials
login "$email" "a brand new password"
pass "changing the password (204) revokes the other sessions, keeps this one, and the old password stops working"

# ---------------------------------------------------------------- rehash
bh_stop
BULKHEAD_ARGON2_OPSLIMIT=3 bh_start serve --no-workers
login "$email" "a brand new password"
auth_sql "select password_hash from auth.users where email = '$email'" | grep -q '^\$argon2id\$v=19\$m=19456,t=3' ||
    fail "the hash was not upgraded to the raised cost"
login "$email" "a brand new password"
pass "raising the Argon2 cost upgrades a stored hash at the next login, and the password still works"
