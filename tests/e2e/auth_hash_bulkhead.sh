#!/usr/bin/env bash
# Password hashing is a bulkhead: 40 concurrent logins get a few Argon2
# slots and a short queue, the rest a fast 503 with Retry-After, and
# meanwhile /health/live and GET /v1/me (other routes, same HTTP threads)
# stay fast. Prints the latencies it measured.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
bh_start serve --no-workers

new_user flood; U=$EMAIL ME=$TOKEN

# max_ms URL [TOKEN]: the slowest of 10 sequential GETs, in milliseconds.
max_ms() {
    local auth=() worst=0 t
    [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
    for _ in $(seq 1 10); do
        t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' "${auth[@]}" "$1")
        [ "${t%% *}" = 200 ] || fail "GET $1 during the flood: ${t%% *}"
        t=$(awk -v s="${t#* }" 'BEGIN { printf "%d", s * 1000 }')
        [ "$t" -gt "$worst" ] && worst=$t
    done
    echo "$worst"
}

base_live=$(max_ms "$BH_URL/health/live")
base_me=$(max_ms "$BH_URL/v1/me" "$ME")

body="{\"email\":\"$U\",\"password\":\"$BH_TEST_PASSWORD\"}"
pids=()
for i in $(seq 1 40); do
    curl -sS -o /dev/null -D "$BH_TMP/login$i.h" -w '%{http_code} %{time_total}\n' \
        -H 'Content-Type: application/json' --data-binary "$body" "$BH_URL/v1/auth/login" \
        >"$BH_TMP/login$i" &
    pids+=($!)
done
live=$(max_ms "$BH_URL/health/live")
me=$(max_ms "$BH_URL/v1/me" "$ME")
wait "${pids[@]}" # not a bare wait: the server is a background job too

ok=0 busy=0 slowest_busy=0
for i in $(seq 1 40); do
    read -r code secs <"$BH_TMP/login$i"
    case $code in
    200) ok=$((ok + 1)) ;;
    503)
        busy=$((busy + 1))
        grep -qi '^Retry-After: ' "$BH_TMP/login$i.h" || fail "503 without Retry-After"
        ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
        [ "$ms" -gt "$slowest_busy" ] && slowest_busy=$ms
        ;;
    *) fail "login $i answered $code" ;;
    esac
done
echo "# before: /health/live max ${base_live} ms, /v1/me max ${base_me} ms"
echo "# during 40 concurrent logins: /health/live max ${live} ms, /v1/me max ${me} ms;" \
     "logins: $ok ok, $busy refused with 503 (slowest refusal ${slowest_busy} ms)"
[ "$ok" -ge 2 ] || fail "no login got through the bulkhead"
[ "$live" -lt 500 ] && [ "$me" -lt 500 ] || fail "other routes slowed down: live ${live} ms, me ${me} ms"
pass "40 concurrent logins: $ok hashed, $busy got a fast 503 + Retry-After; other routes stayed fast"

rejected=$(curl -fsS "$BH_URL/metrics" | awk '$1 == "bulkhead_auth_hash_rejected_total" {print $2}')
[ "${rejected:-0}" = "$busy" ] || fail "bulkhead_auth_hash_rejected_total is ${rejected:-absent}, expected $busy"
pass "the refusals are counted in bulkhead_auth_hash_rejected_total"
