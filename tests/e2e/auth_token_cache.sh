#!/usr/bin/env bash
# Each process keeps the access tokens it verified (modules/auth/src/token_cache.c),
# so a token sent again skips the cryptography. What must not change: a
# logout refuses the token at once, in this process and in another one that
# holds it verified too (revocation is checked on every request); a token
# is refused once its exp passes, whether it was verified before or not; a
# token that differs by one byte is verified afresh (and refused); and with
# BULKHEAD_AUTH_TOKEN_CACHE=0 nothing is kept.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"

bh_start serve --no-workers
URL_A=$BH_URL
bh_start serve --no-workers
URL_B=$BH_URL
on() { BH_URL=$1; }
metric() { ops_curl -fsS "$1/metrics" | awk -v m="bulkhead_auth_token_cache_requests_total{result=\"$2\"}" '$1 == m {print $2; f=1} END {if (!f) print 0}'; }

on "$URL_A"
new_user token-cache
for u in "$URL_A" "$URL_B"; do
  on "$u"
  for i in 1 2 3; do api GET /v1/me; expect 200; done
  [ "$(metric "$u" hit)" -ge 2 ] || fail "$u: the token was not found verified: hits $(metric "$u" hit)"
done
pass "a token sent again is found verified (hits in both processes)"

# A byte changed in the signature: not the cached token, verified and refused.
on "$URL_A"
sig=$(cut -d. -f3 <<<"$TOKEN")
c=${sig:0:1}; [ "$c" = A ] && r=B || r=A
GOOD=$TOKEN
TOKEN="$(cut -d. -f1,2 <<<"$GOOD").$r${sig:1}"
api GET /v1/me
expect 401
TOKEN=$GOOD
pass "a token one byte off the cached one is refused"

# Logout in A: refused at once in A and in B, both of which hold it verified.
hits_a=$(metric "$URL_A" hit)
api POST /v1/auth/logout
expect 204
for u in "$URL_A" "$URL_B"; do
  on "$u"
  api GET /v1/me
  expect 401 "GET /v1/me in $u right after the logout"
done
[ "$(metric "$URL_A" hit)" -gt "$hits_a" ] || fail "the refused token was not a cached one in A"
pass "logout: the cached token is refused at once in this process and in the other"

# A token that expires in 2 s: accepted (and kept), then refused once exp passes.
on "$URL_A"
new_user token-cache-exp
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() { local s; s=$(tr -- '-_' '+/' <<<"$1"); while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done; base64 -d <<<"$s"; }
claims=$(unb64url "$(cut -d. -f2 <<<"$TOKEN")")
now=$(date +%s)
exp=$((now + 2))
h=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url)
p=$(jq -c --argjson now "$now" --argjson exp "$exp" '.iat = $now | .exp = $exp' <<<"$claims" | b64url)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$BULKHEAD_JWT_SECRET" -binary | b64url)
TOKEN="$h.$p.$s"
hits_a=$(metric "$URL_A" hit)
api GET /v1/me
if [ "$(date +%s)" -lt "$exp" ]; then # the machine may be slow: only then is 200 owed
  expect 200
  api GET /v1/me
fi
while [ "$(date +%s)" -lt "$exp" ]; do sleep 0.2; done
api GET /v1/me
expect 401 "GET /v1/me with a token past its exp"
[ "$(metric "$URL_A" hit)" -gt "$hits_a" ] || echo "note: the short token was never found verified (slow machine)"
pass "a token verified before is refused once its exp passes"

# Turned off: every check is a miss.
BULKHEAD_AUTH_TOKEN_CACHE=0 bh_start serve --no-workers
URL_D=$BH_URL
on "$URL_D"
new_user token-cache-off
for i in 1 2 3; do api GET /v1/me; expect 200; done
[ "$(metric "$URL_D" hit)" = 0 ] || fail "BULKHEAD_AUTH_TOKEN_CACHE=0 still finds tokens: $(metric "$URL_D" hit)"
[ "$(metric "$URL_D" miss)" -ge 3 ] || fail "misses with the cache off: $(metric "$URL_D" miss)"
pass "BULKHEAD_AUTH_TOKEN_CACHE=0 keeps no token"
