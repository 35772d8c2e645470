#!/usr/bin/env bash
# The contract test can fail: fed recorded exchanges that break
# docs/openapi.yaml (an undocumented status, a body off its schema, an
# undocumented content type, a path nobody documented, a required header
# missing), tests/contract/validate.js exits 1 and names each; fed exchanges
# that match, it exits 0; fed nothing, it skips (77) rather than pass.
source "$(dirname "$0")/../lib/common.sh"
VALIDATE=(node "$BH_SOURCE_DIR/tests/contract/validate.js" "$BH_SOURCE_DIR/docs/openapi.yaml")
[ -x "$BH_SOURCE_DIR/tools/node_modules/.bin/redocly" ] || skip "tools/node_modules missing (scripts/bootstrap --lint-tools)"

# exchange METHOD PATH STATUS CONTENT_TYPE BODY [EXTRA_HEADER_LINE]
exchange() {
    local headers
    headers=$(printf 'HTTP/1.1 %s X\r\nContent-Type: %s\r\n%s\r\n' "$3" "$4" "${6:+$6$'\r\n'}")
    jq -cn --arg m "$1" --arg p "$2" --argjson s "$3" --arg h "$headers" --arg b "$5" \
        '{test: "contract_catches", method: $m, path: $p, status: $s, headers: $h, body: $b}'
}
run() { # DIR: the validator's output in $OUT, its status in $RC
    RC=0
    OUT=$("${VALIDATE[@]}" "$1" 2>&1) || RC=$?
}

good="$BH_TMP/good" && mkdir -p "$good"
exchange GET /health/live 200 application/json '{"status":"ok"}' >"$good/a.jsonl"
exchange GET "/v1/me?x=1" 401 application/problem+json \
    '{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthorized","request_id":"r1"}' >>"$good/a.jsonl"
# Outside the document: an unknown path is a 404 problem, an unserved
# method a 405 problem with Allow.
problem404='{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","request_id":"r2"}'
problem405='{"type":"about:blank","title":"Method Not Allowed","status":405,"code":"method_not_allowed","request_id":"r3"}'
exchange GET /v1/nowhere 404 application/problem+json "$problem404" >>"$good/a.jsonl"
exchange DELETE /health/live 405 application/problem+json "$problem405" 'Allow: GET, HEAD' >>"$good/a.jsonl"
run "$good"
[ "$RC" = 0 ] || fail "matching exchanges refused ($RC): $OUT"
pass "exchanges that match docs/openapi.yaml pass"

check_fails() { # NAME EXPECTED_TEXT EXCHANGE_JSON
    local dir="$BH_TMP/$1"
    mkdir -p "$dir"
    printf '%s\n' "$3" >"$dir/x.jsonl"
    run "$dir"
    [ "$RC" = 1 ] || fail "$1: expected exit 1, got $RC: $OUT"
    grep -qF -- "$2" <<<"$OUT" || fail "$1: expected '$2' in: $OUT"
    pass "$1 fails the contract test ($2)"
}
check_fails "an undocumented status" "GET /health/live -> 418: status not documented" \
    "$(exchange GET /health/live 418 application/json '{"status":"ok"}')"
check_fails "a body off its schema" "body does not match" \
    "$(exchange GET /health/live 200 application/json '{"status":"fine"}')"
check_fails "an undocumented content type" "content type text/html not documented" \
    "$(exchange GET /health/live 200 text/html '<p>ok</p>')"
check_fails "an undocumented path that is not a 404" "not in docs/openapi.yaml): answered 200, not 404" \
    "$(exchange GET /v1/nowhere 200 application/json '{}')"
check_fails "an undocumented method that is not a 405" "(method not documented): answered 204, not 405" \
    "$(exchange DELETE /health/live 204 application/json '')"
check_fails "a problem without its required members" "body does not match" \
    "$(exchange GET /v1/me 401 application/problem+json '{"title":"Unauthorized"}')"

empty="$BH_TMP/empty" && mkdir -p "$empty"
run "$empty"
[ "$RC" = 77 ] || fail "an empty log must skip (77), got $RC: $OUT"
pass "nothing recorded is a skip, never a pass"
