#!/usr/bin/env bash
# Every route, fed malformed input: bad JSON, a JSON array, unknown fields,
# wrong types, path parameters that are not UUIDs or name nothing, absurd
# query arguments, no token and a garbage token. Nothing may answer 5xx,
# and every 4xx must be an application/problem+json body with a code.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve --no-workers
new_user sweep
GOOD=$TOKEN ORG=$ORG_ID
RANDOM_ID=0190a0b1-0000-7000-8000-00000000dead

bodies=('{' '[]' '{"unknown_field": 1}' '{"title": 5, "name": [], "email": {}, "plan_id": null}'
        '{"title": "", "status": "nope", "priority": "x", "due_at": "yesterday", "role": "god"}'
        "{\"title\": \"$(head -c 300 /dev/zero | tr '\0' 'x')\"}" '"just a string"')
params=("$ORG/$RANDOM_ID" "not-a-uuid/not-a-uuid" "$RANDOM_ID/$RANDOM_ID")
queries=("" "?limit=0" "?limit=abc&cursor=%00%ff" "?cursor=bm90IGEgY3Vyc29y&status=weird&unread=maybe")
tokens=("$GOOD" "" "garbage.token.here")

checked=0
probe() { # method path [body] [token]
    local method=$1 path=$2 body=${3:-} token=${4:-}
    local args=(-sS -o "$BH_TMP/b" -D "$BH_TMP/h" -w '%{http_code}' --max-time 5 -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -H 'Idempotency-Key: sweep' --data-binary "$body")
    local code
    : >"$BH_TMP/b"
    code=$(curl "${args[@]}" "$BH_URL$path") || fail "$method $path: no answer (curl $?)"
    checked=$((checked + 1))
    contract_record "$method" "$path" "$code" "$BH_TMP/h" "$BH_TMP/b"
    [ "${code:0:1}" != 5 ] || fail "$method $path [$body] answered $code: $(cat "$BH_TMP/b")"
    if [ "${code:0:1}" = 4 ]; then
        grep -qi '^Content-Type: application/problem+json' "$BH_TMP/h" ||
            fail "$method $path [$body] answered $code without a problem body"
        jq -e '.code | strings' "$BH_TMP/b" >/dev/null || fail "$method $path: problem without a code"
    fi
}

while read -r method route _; do
    case $route in
        */stream) continue ;; # a long-lived stream: covered by its own tests
    esac
    for p in "${params[@]}"; do
        a=${p%%/*} b=${p#*/}
        path=$(sed -e "s|{org}|$a|" -e "s|{[a-z_]*}|$b|g" <<<"$route")
        for t in "${tokens[@]}"; do
            probe "$method" "$path" "" "$t"
        done
        if [ "$method" = GET ]; then
            for q in "${queries[@]}"; do
                probe "$method" "$path$q" "" "$GOOD"
            done
        else
            for body in "${bodies[@]}"; do
                probe "$method" "$path" "$body" "$GOOD"
            done
        fi
    done
done < <("$BH_BIN" routes | awk 'NR > 1')
pass "$checked malformed requests across every route: no 5xx, every 4xx a problem with a code"
