#!/usr/bin/env bash
# Failed logins are limited per account and per client address: after the
# limit, even the right password is 429 with Retry-After and the RateLimit
# headers, until the window ends. A success resets the account's count.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
# Windows long enough for a loaded machine (each failure costs an Argon2
# run), short enough to wait one out.
export BULKHEAD_LOGIN_MAX_FAILURES=3 BULKHEAD_LOGIN_WINDOW_S=8
bh_start serve --no-workers

attempt() { TOKEN= api POST /v1/auth/login "{\"email\":\"$1\",\"password\":\"$2\"}"; }

new_user limited; U=$EMAIL
for left in 2 1 0; do
    attempt "$U" "not the password"
    expect 401
    [ "$(header RateLimit-Limit)" = 3 ] && [ "$(header RateLimit-Remaining)" = "$left" ] ||
        fail "after a failure: limit $(header RateLimit-Limit), remaining $(header RateLimit-Remaining)"
done
attempt "$U" "$BH_TEST_PASSWORD"
expect 429
[ "$(jget .code)" = rate_limited ] || fail "429 body: $BODY"
retry=$(header Retry-After) reset=$(header RateLimit-Reset)
[ "$retry" -ge 1 ] && [ "$retry" -le 8 ] && [ "$reset" = "$retry" ] &&
    [ "$(header RateLimit-Remaining)" = 0 ] && [ "$(header RateLimit-Limit)" = 3 ] ||
    fail "429 headers: Retry-After=$retry RateLimit-Reset=$reset remaining=$(header RateLimit-Remaining)"
pass "three failed logins, then 429 rate_limited even with the right password (Retry-After ${retry}s, RateLimit-*)"

new_user other
attempt "$EMAIL" "$BH_TEST_PASSWORD"; expect 200
pass "another account from the same address is not affected by the first account's limit"

sleep "$((retry + 1))"
attempt "$U" "$BH_TEST_PASSWORD"; expect 200
attempt "$U" "not the password"; expect 401
attempt "$U" "$BH_TEST_PASSWORD"; expect 200
attempt "$U" "not the password"; expect 401
[ "$(header RateLimit-Remaining)" = 2 ] || fail "a success did not reset the count: $(header RateLimit-Remaining)"
pass "after Retry-After the account logs in again, and a success resets its failure count"

# Per address: a second server with a small address limit and a huge
# account limit; fresh unknown emails from 127.0.0.1 run into it.
bh_stop
export BULKHEAD_LOGIN_MAX_FAILURES=1000 BULKHEAD_LOGIN_MAX_FAILURES_PER_ADDR=6 BULKHEAD_LOGIN_WINDOW_S=60
bh_start serve --no-workers
limited_at=0
for i in $(seq 1 7); do
    attempt "$(fresh_email ghost)" "whatever password"
    if [ "$STATUS" = 429 ]; then limited_at=$i; break; fi
    expect 401
done
[ "$limited_at" -ge 1 ] || fail "no 429 after 7 failures from one address"
[ "$(header RateLimit-Limit)" = 6 ] && [ -n "$(header Retry-After)" ] || fail "address 429 headers"
pass "failures from one address across many accounts are limited too (429 at attempt $limited_at, limit 6)"
