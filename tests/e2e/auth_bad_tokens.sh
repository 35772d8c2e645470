#!/usr/bin/env bash
# The bad-token matrix, end to end: tokens forged with openssl (alg none,
# other algorithms, another key, expired, missing or wrong claims, a payload
# swapped under a valid signature) against GET /v1/me. Every one is a 401
# with `WWW-Authenticate: Bearer error="invalid_token"`; the control row, a
# correctly forged token with our key, is a 200.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve --no-workers

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() { local s; s=$(tr -- '-_' '+/' <<<"$1"); while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done; base64 -d <<<"$s"; }
# jwt HEADER_JSON PAYLOAD_JSON ALG KEY: ALG is sha256|sha384|sha512 or "none" (no signature).
jwt() {
    local h p sig=""
    h=$(printf '%s' "$1" | b64url)
    p=$(printf '%s' "$2" | b64url)
    if [ "$3" != none ]; then
        sig=$(printf '%s.%s' "$h" "$p" | openssl dgst "-$3" -hmac "$4" -binary | b64url)
    fi
    printf '%s.%s.%s' "$h" "$p" "$sig"
}

new_user bad-token
real=$TOKEN
claims=$(unb64url "$(cut -d. -f2 <<<"$real")")
sub=$(jq -r .sub <<<"$claims") sid=$(jq -r .sid <<<"$claims")
now=$(date +%s)
KEY=$BULKHEAD_JWT_SECRET
HS256='{"alg":"HS256","typ":"JWT"}'
# claims with overrides: payload '.exp = 1'
payload() {
    jq -c "$1" <<<"{\"iss\":\"bulkhead\",\"aud\":\"bulkhead-api\",\"sub\":\"$sub\",\"sid\":\"$sid\",
        \"jti\":\"$(cat /proc/sys/kernel/random/uuid)\",\"iat\":$now,\"exp\":$((now + 600))}"
}
good=$(jwt "$HS256" "$(payload .)" sha256 "$KEY")
swapped="$(cut -d. -f1 <<<"$good").$(payload '.sub = "00000000-0000-4000-8000-000000000000"' | b64url).$(cut -d. -f3 <<<"$good")"

#   name                        token                                                                  status
cases=(
    "control: our key, HS256|$good|200"
    "the token signup issued|$real|200"
    "alg none, no signature|$(jwt '{"alg":"none","typ":"JWT"}' "$(payload .)" none)|401"
    "alg none with a signature|$(jwt '{"alg":"none"}' "$(payload .)" sha256 "$KEY")|401"
    "HS384 with our key|$(jwt '{"alg":"HS384","typ":"JWT"}' "$(payload .)" sha384 "$KEY")|401"
    "HS512 with our key|$(jwt '{"alg":"HS512","typ":"JWT"}' "$(payload .)" sha512 "$KEY")|401"
    "RS256 header, HMAC signature|$(jwt '{"alg":"RS256","typ":"JWT"}' "$(payload .)" sha256 "$KEY")|401"
    "another key|$(jwt "$HS256" "$(payload .)" sha256 "another-secret-0123456789abcdef0123456789")|401"
    "expired a minute ago|$(jwt "$HS256" "$(payload ".exp = $((now - 60))")" sha256 "$KEY")|401"
    "no exp|$(jwt "$HS256" "$(payload 'del(.exp)')" sha256 "$KEY")|401"
    "exp as a string|$(jwt "$HS256" "$(payload ".exp = \"$((now + 600))\"")" sha256 "$KEY")|401"
    "another issuer|$(jwt "$HS256" "$(payload '.iss = "evil"')" sha256 "$KEY")|401"
    "no issuer|$(jwt "$HS256" "$(payload 'del(.iss)')" sha256 "$KEY")|401"
    "another audience|$(jwt "$HS256" "$(payload '.aud = "other-api"')" sha256 "$KEY")|401"
    "audience as an array|$(jwt "$HS256" "$(payload '.aud = ["bulkhead-api"]')" sha256 "$KEY")|401"
    "sub not a UUID|$(jwt "$HS256" "$(payload '.sub = "admin"')" sha256 "$KEY")|401"
    "no session id|$(jwt "$HS256" "$(payload 'del(.sid)')" sha256 "$KEY")|401"
    "payload swapped under a valid signature|$swapped|401"
    "signature stripped|$(cut -d. -f1,2 <<<"$good").|401"
    "not a JWT|abc.def.ghi|401"
)

n=0
for row in "${cases[@]}"; do
    IFS='|' read -r name token want <<<"$row"
    TOKEN=$token api GET /v1/me
    [ "$STATUS" = "$want" ] || fail "$name: expected $want, got $STATUS: $BODY"
    if [ "$want" = 401 ]; then
        header WWW-Authenticate | grep -q 'Bearer.*error="invalid_token"' ||
            fail "$name: no invalid_token challenge: $(header WWW-Authenticate)"
        [ "$(jget .code)" = unauthorized ] || fail "$name: $BODY"
    fi
    n=$((n + 1))
done
pass "$n rows of the bad-token matrix: only HS256 tokens with our key and every claim right pass"

TOKEN= api GET /v1/me; expect 401
header WWW-Authenticate | grep -q '^Bearer' || fail "no Bearer challenge without a token"
TOKEN= api GET /v1/me "" -H "Authorization: Basic dXNlcjpwYXNz"; expect 401
TOKEN= api GET /v1/me "" -H "Authorization: Bearer"; expect 401
pass "no token, another scheme and an empty bearer are 401 with a Bearer challenge"
