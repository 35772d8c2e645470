#!/usr/bin/env bash
# Redis may come back without the event routes (a flushed or replaced
# instance). The relay must then keep its events in the outbox, publish the
# routes again, and deliver them: never mark an event sent with nowhere to go.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/api.sh"
: "${REDIS_PORT:?}" "${BH_REDIS_ADMIN_PASSWORD:?}"
admin() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" "$@"; }
bh_start serve

# Lose every route, as a Redis that came back empty would.
# One DEL for all of them: a relay may publish them again at any moment
# after, so what is checked is that this DEL removed them, not that they
# are still gone.
mapfile -t keys < <(admin --scan --pattern 'bh:routes:*')
[[ " ${keys[*]} " == *" bh:routes:published "* ]] || fail "no published routes to lose: ${keys[*]}"
[ "$(admin DEL "${keys[@]}")" = "${#keys[@]}" ] || fail "the routes were not all deleted"

new_user routes
for _ in $(seq 1 50); do
    api GET /v1/me/notifications
    [ "$(jget '.data | length')" -ge 1 ] 2>/dev/null && break
    sleep 0.2
done
expect 200
[ "$(jget '.data[0].type')" = user.signed_up ] || fail "welcome notification never arrived: $BODY"
[ "$(admin EXISTS bh:routes:published)" = 1 ] || fail "routes were not published again"
pass "with the routes gone from Redis, the signup's event waited, the routes came back and it was delivered"
