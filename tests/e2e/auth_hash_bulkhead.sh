#!/usr/bin/env bash
# Password hashing is a bulkhead: the routes that hash run on their own
# handler pool (a few threads and a short queue), so 40 concurrent logins get
# a few Argon2 runs, the rest a fast 503 with Retry-After, and meanwhile
# /health/live and GET /v1/me (other routes, on HTTP threads that no login
# holds) stay fast. Prints the latencies it measured.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
# All 40 logins come from one address and for one account: lift the
# per-address share of the pool and the account's limit (an attempt counts
# until it succeeds), so only the pool's own size refuses.
BULKHEAD_AUTH_HASH_PER_CLIENT=64 BULKHEAD_LOGIN_MAX_FAILURES=1000 bh_start serve --no-workers

new_user flood; U=$EMAIL ME=$TOKEN

# timings URL [TOKEN]: "median max" of 10 sequential GETs, in milliseconds.
timings() {
    local auth=() t
    [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
    for _ in $(seq 1 10); do
        t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' "${auth[@]}" "$1")
        [ "${t%% *}" = 200 ] || fail "GET $1 during the flood: ${t%% *}"
        awk -v s="${t#* }" 'BEGIN { printf "%d\n", s * 1000 }'
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }'
}

read -r base_live_med base_live <<<"$(timings "$BH_URL/health/live")"
read -r base_me_med base_me <<<"$(timings "$BH_URL/v1/me" "$ME")"

body="{\"email\":\"$U\",\"password\":\"$BH_TEST_PASSWORD\"}"
pids=()
for i in $(seq 1 40); do
    curl -sS -o /dev/null -D "$BH_TMP/login$i.h" -w '%{http_code} %{time_total}\n' \
        -H 'Content-Type: application/json' --data-binary "$body" "$BH_URL/v1/auth/login" \
        >"$BH_TMP/login$i" &
    pids+=($!)
done
read -r live_med live <<<"$(timings "$BH_URL/health/live")"
read -r me_med me <<<"$(timings "$BH_URL/v1/me" "$ME")"
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
echo "# before: /health/live median ${base_live_med} ms (max ${base_live}), /v1/me median ${base_me_med} ms (max ${base_me})"
echo "# during 40 concurrent logins: /health/live median ${live_med} ms (max ${live})," \
     "/v1/me median ${me_med} ms (max ${me}); logins: $ok ok, $busy refused with 503" \
     "(slowest refusal ${slowest_busy} ms)"
[ "$ok" -ge 2 ] || fail "no login got through the bulkhead"
# No HTTP thread ever waits for a hash (logins are parked while they queue
# or run on the pool), so even the slowest of the other requests stays far
# below one Argon2 run; the bound leaves room for a loaded 2-core machine.
[ "$live_med" -lt 100 ] && [ "$me_med" -lt 100 ] || fail "other routes slowed down: live ${live_med} ms, me ${me_med} ms (medians)"
[ "$live" -lt 300 ] && [ "$me" -lt 300 ] || fail "other routes stalled: live ${live} ms, me ${me} ms (max)"
pass "40 concurrent logins: $ok hashed, $busy got a fast 503 + Retry-After; other routes stayed fast"

metric='bulkhead_http_pool_rejected_total{pool="auth.password"}'
rejected=$(ops_curl -fsS "$BH_URL/metrics" | awk -v m="$metric" '$1 == m {print $2}')
[ "${rejected:-0}" = "$busy" ] || fail "$metric is ${rejected:-absent}, expected $busy"
pass "the refusals are counted in $metric"
