#!/usr/bin/env bash
# The login limiter decides before any password is hashed, atomically, and
# one address cannot take the password pool from everybody else:
#  - eight concurrent wrong passwords for one account get exactly the limit
#    of 401s (the rest 429), because an attempt is counted when admitted;
#  - a flood of wrong logins from 127.0.0.1 (sixteen at once) leaves a real
#    user on 127.0.0.2 logging in every time: the flood holds at most its
#    per-address share of the pool and, past the address limit, is refused
#    on the HTTP thread without touching the pool.
# The client address is the TCP peer's (no forwarding header is trusted),
# so the second address is a second loopback source address.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"

# 1. Exactly the limit. A roomy pool, so only the limiter can refuse.
BULKHEAD_LOGIN_MAX_FAILURES=5 BULKHEAD_AUTH_HASH_QUEUE=16 BULKHEAD_AUTH_HASH_PER_CLIENT=16 \
    BULKHEAD_AUTH_HASH_WAIT_MS=20000 bh_start serve --no-workers
new_user racer; U=$EMAIL
body="{\"email\":\"$U\",\"password\":\"not the password at all\"}"
seq 1 8 | xargs -P8 -I{} curl -sS -o /dev/null -w '%{http_code}\n' \
    -H 'Content-Type: application/json' --data-binary "$body" "$BH_URL/v1/auth/login" \
    >"$BH_TMP/codes"
n401=$(grep -c '^401$' "$BH_TMP/codes" || true)
n429=$(grep -c '^429$' "$BH_TMP/codes" || true)
[ "$n401" = 5 ] && [ "$n429" = 3 ] ||
    fail "8 concurrent wrong passwords, limit 5: $n401 x 401, $n429 x 429 ($(sort "$BH_TMP/codes" | uniq -c | tr '\n' ' '))"
pass "8 concurrent wrong passwords with a limit of 5: exactly 5 x 401 and 3 x 429"
bh_stop

# 2. A flood from one address. Default pool (2 threads, 4 waiting, 2 places
# per address); a long queue wait so a slow machine is not mistaken for a
# refusal.
BULKHEAD_AUTH_HASH_WAIT_MS=5000 bh_start serve --no-workers
new_user victim; V=$EMAIL
curl -sS -o /dev/null --interface 127.0.0.2 "$BH_URL/health/live" ||
    skip "cannot connect from 127.0.0.2"
# Sixteen loops of wrong logins for ever-new emails, until told to stop.
flood_pids=()
for i in $(seq 1 16); do
    (
        n=0
        while [ -d "$BH_TMP" ] && [ ! -e "$BH_TMP/stop" ]; do
            n=$((n + 1))
            curl -sS -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
                --data-binary "{\"email\":\"x$i.$n@e.test\",\"password\":\"wrong password x\"}" \
                "$BH_URL/v1/auth/login" 2>/dev/null || true
        done >"$BH_TMP/flood.$i"
    ) &
    flood_pids+=($!)
done
bh_on_exit "touch $BH_TMP/stop"
sleep 2
ok=0 other=()
for _ in $(seq 1 5); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
        -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$V\",\"password\":\"$BH_TEST_PASSWORD\"}" "$BH_URL/v1/auth/login")
    if [ "$code" = 200 ]; then ok=$((ok + 1)); else other+=("$code"); fi
done
touch "$BH_TMP/stop"
wait "${flood_pids[@]}"
cat "$BH_TMP"/flood.* >"$BH_TMP/flood"
sort "$BH_TMP/flood" | uniq -c | sed 's/^/# flood: /'
[ "$ok" = 5 ] || fail "during the flood the real user got $ok x 200 and: ${other[*]}"
grep -q '^429$' "$BH_TMP/flood" || fail "the flood was never refused with 429"
pass "a 16-wide flood from 127.0.0.1: the real user on 127.0.0.2 logged in 5 of 5 times"
