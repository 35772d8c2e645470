#!/usr/bin/env bash
# A Redis outage never resurrects a revoked session and never lifts the
# login limit. The test runs its own private Redis (same ACL as the dev
# environment) so it can stop and restart it without disturbing other
# tests: access tokens keep working from Postgres while Redis is down, a
# logout made during the outage holds after Redis returns (and after Redis
# loses its data), and failed logins are limited in-process meanwhile.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
: "${BULKHEAD_REDIS_PASSWORD:?}" "${BH_REDIS_ADMIN_PASSWORD:?}"

RPORT=$(free_port)
"$BH_SOURCE_DIR/scripts/redis-acl" "$BULKHEAD_REDIS_PASSWORD" "$BH_REDIS_ADMIN_PASSWORD" >"$BH_TMP/users.acl"
REDIS_PID=
redis_up() {
    redis-server --bind 127.0.0.1 --port "$RPORT" --aclfile "$BH_TMP/users.acl" --save '' \
        --appendonly no --dir "$BH_TMP" >"$BH_TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 && return 0; sleep 0.1; done
    fail "private redis did not start"
}
redis_down() { kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=; }
rcli() { redis-cli -p "$RPORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }
bh_on_exit '[ -z "$REDIS_PID" ] || redis_down'
sid_of() { local p; p=$(cut -d. -f2 <<<"$1" | tr -- '-_' '+/'); while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done; base64 -d <<<"$p" | jq -r .sid; }
me_status() { TOKEN=$1 api GET /v1/me; echo "$STATUS"; }

redis_up
export REDIS_URL="redis://127.0.0.1:$RPORT" BULKHEAD_LOGIN_MAX_FAILURES=2 BULKHEAD_AUTH_DENY_SYNC_MS=200
bh_start serve --no-workers

new_user outage; U=$EMAIL
login "$U"; S1=$TOKEN
login "$U"; S2=$TOKEN
[ "$(me_status "$S1")" = 200 ] || fail "before the outage"

redis_down
start=$(date +%s%N)
[ "$(me_status "$S1")" = 200 ] || fail "a live token was refused with Redis down: $BODY"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
TOKEN=$S1 api GET "/v1/orgs/$ORG_ID"; expect 200
pass "Redis down: access tokens and memberships are checked in Postgres (GET /v1/me in ${ms} ms)"

TOKEN=$S1 api POST /v1/auth/logout; expect 204
[ "$(me_status "$S1")" = 401 ] || fail "logged-out token accepted during the outage"
[ "$(me_status "$S2")" = 200 ] || fail "the other session was refused"
pass "Redis down: logout is 204 and the logged-out token is refused at once"

for _ in 1 2; do TOKEN= api POST /v1/auth/login "{\"email\":\"$U\",\"password\":\"wrong password!\"}"; expect 401; done
TOKEN= api POST /v1/auth/login "{\"email\":\"$U\",\"password\":\"$BH_TEST_PASSWORD\"}"; expect 429
[ -n "$(header Retry-After)" ] || fail "no Retry-After from the in-process limiter"
pass "Redis down: failed logins are limited in-process (429 with Retry-After), not unlimited"

redis_up
for i in $(seq 1 20); do
    [ "$(me_status "$S1")" = 401 ] || fail "revoked session resurrected after Redis came back (check $i): $BODY"
    sleep 0.1
done
[ "$(rcli EXISTS "auth:deny:$(sid_of "$S1")")" = 1 ] || fail "the reconciler did not push the revocation to Redis"
[ "$(me_status "$S2")" = 200 ] || fail "the other session was refused after the outage"
pass "Redis back: the revocation holds (20 checks over 2 s) and the reconciler wrote auth:deny:<sid>"

rcli FLUSHALL >/dev/null
for i in $(seq 1 10); do
    [ "$(me_status "$S1")" = 401 ] || fail "revoked session resurrected after Redis lost its data (check $i)"
    sleep 0.1
done
[ "$(rcli EXISTS "auth:deny:$(sid_of "$S1")")" = 1 ] || fail "the denylist was not re-seeded after a data loss"
pass "Redis loses its data: still refused (Postgres until the denylist is re-seeded, then Redis)"
