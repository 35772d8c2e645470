#!/usr/bin/env bash
# The HTTP edge keeps to the RFCs where an attacker probed it:
#  - HEAD is served wherever GET is (RFC 9110 9.3.2): same status and
#    headers, no body; Allow lists HEAD beside GET;
#  - a chunked body over the limit is a 413 problem, not a reset;
#  - the Link header is built from the canonical path: //v1//orgs//… never
#    becomes a protocol-relative URL;
#  - a date-time offset Postgres would refuse (+23:59), in a body or in a
#    cursor, is a 422 on the field, never SQL's answer;
#  - an access token with nbf ahead, exp years ahead or a claim twice is a 401.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
BULKHEAD_HTTP_BODY_LIMIT=65536 bh_start serve --no-workers
read -r OWNER ORG _ _ <<<"$(tasks_signup edges)"
T="/v1/orgs/$ORG/tasks"

# ---- HEAD
for path in /health/live "/v1/orgs/$ORG" "$T" /v1/me; do
    get=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OWNER" "$BH_URL$path")
    curl -sS -I -o "$BH_TMP/head.h" -w '%{http_code} %{size_download}\n' \
        -H "Authorization: Bearer $OWNER" "$BH_URL$path" >"$BH_TMP/head"
    read -r code size <"$BH_TMP/head"
    [ "$code" = "$get" ] && [ "$size" = 0 ] || fail "HEAD $path: $code with $size body bytes (GET: $get)"
    grep -qi '^content-type: application/json' "$BH_TMP/head.h" || fail "HEAD $path: no Content-Type"
done
TOKEN=$OWNER api DELETE /v1/me
expect 405
[[ "$(header Allow)" == *"GET, HEAD"* ]] || fail "Allow without HEAD: $(header Allow)"
pass "HEAD answers like GET without a body on every GET route; Allow lists it"

# ---- a chunked body over the limit
big=$(( 2 * 1024 * 1024 ))
code=$(head -c "$big" /dev/zero | tr '\0' ' ' | curl -sS -o "$BH_TMP/big" -w '%{http_code}' \
    -H "Authorization: Bearer $OWNER" -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @- "$BH_URL$T") ||
    fail "a 2 MiB chunked body: the connection was cut (curl $?)"
[ "$code" = 413 ] && [ "$(jq -r .code "$BH_TMP/big")" = body_too_large ] ||
    fail "a 2 MiB chunked body: $code $(head -c 300 "$BH_TMP/big")"
pass "a 2 MiB chunked body gets 413 body_too_large, not a reset"

# ---- Link from the canonical path
for i in 1 2 3; do TOKEN=$OWNER api POST "$T" "{\"title\":\"link $i\"}"; expect 201; done
TOKEN=$OWNER api GET "//v1//orgs//$ORG//tasks//?limit=2"
expect 200
link=$(header Link)
[[ "$link" == "</v1/orgs/$ORG/tasks?limit=2&cursor="*'>; rel="next"' ]] ||
    fail "Link from //v1//orgs//…: $link"
pass "a non-canonical path gets a Link on the canonical one: ${link%%\?*}>"

# ---- offsets Postgres refuses
TOKEN=$OWNER api POST "$T" '{"title":"a","due_at":"2027-01-01T00:00:00+23:59"}'
expect 422
[ "$(jget '.errors[0].field')" = due_at ] || fail "due_at +23:59: $BODY"
TOKEN=$OWNER api POST "$T" '{"title":"a","due_at":"2027-01-01T00:00:00+14:00"}'
expect 201
forged=$(printf '2026-01-01T00:00:00+23:59|%s' "$(jget .id)" | base64 -w0 | tr '+/' '-_' | tr -d '=')
TOKEN=$OWNER api GET "$T?cursor=$forged"
expect 422
[ "$(jget '.errors[0].field')" = cursor ] || fail "cursor +23:59: $BODY"
pass "offsets beyond ±14:00 (due_at, a forged cursor) are 422 on the field; +14:00 is fine"

# ---- tokens: nbf, exp, duplicates (signed with the server's own secret)
b64() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
sign() {
    local h p s
    h=$(b64 '{"alg":"HS256","typ":"JWT"}') p=$(b64 "$1")
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$BULKHEAD_JWT_SECRET" -binary |
        base64 -w0 | tr '+/' '-_' | tr -d '=')
    printf '%s.%s.%s' "$h" "$p" "$s"
}
b64d() {
    local x
    x=$(tr '_-' '/+' <<<"$1")
    while [ $((${#x} % 4)) != 0 ]; do x+='='; done
    base64 -d <<<"$x"
}
claims=$(b64d "$(cut -d. -f2 <<<"$OWNER")")
now=$(date +%s)
good=$(jq -c --argjson now "$now" '.iat = $now | .exp = $now + 600' <<<"$claims")
TOKEN=$(sign "$good") api GET /v1/me
expect 200 "a re-signed valid token"
TOKEN=$(sign "$(jq -c --argjson now "$now" '.nbf = $now + 3600' <<<"$good")") api GET /v1/me
expect 401 "nbf an hour ahead"
TOKEN=$(sign "$(jq -c '.exp = 9223372036854775807' <<<"$good")") api GET /v1/me
expect 401 "exp 2^63-1"
dup="${good%\}},\"sub\":\"00000000-0000-4000-8000-000000000000\"}"
TOKEN=$(sign "$dup") api GET /v1/me
expect 401 "sub twice"
pass "tokens with nbf ahead, exp 2^63-1 or sub twice are 401; the same token re-signed is 200"
