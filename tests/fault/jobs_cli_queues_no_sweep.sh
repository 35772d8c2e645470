#!/usr/bin/env bash
# One-shot commands start the platform (they read the queues) but run no
# workers: `bulkhead jobs stats` must not arm billing's sweep chain (each call
# used to queue another `billing.sweep` job), while `bulkhead worker` does
# arm it. In tests/fault only to run alone: no other process may queue a
# sweep while the billing queue is counted.
source "$(dirname "$0")/../lib/common.sh"
[ -n "${REDIS_PORT:-}" ] || skip "no dev environment (run under scripts/with-devenv)"

admin() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" \
        --no-auth-warning "$@"
}
# Sweep jobs waiting in the billing queue (they are delayed by one interval).
sweeps() {
    local id n=0
    for id in $(admin ZRANGE bh:q:billing:delayed 0 -1) $(admin LRANGE bh:q:billing:ready 0 -1); do
        [ "$(admin HGET "bh:job:$id" type)" = billing.sweep ] && n=$((n + 1))
    done
    echo "$n"
}

before=$(sweeps)
for i in 1 2 3; do
    "$BH_BIN" jobs stats >"$BH_TMP/stats.$i" 2>>"$BH_TMP/cli.log" || fail "jobs stats failed: $(cat "$BH_TMP/cli.log")"
done
grep -q '^billing' "$BH_TMP/stats.3" || fail "jobs stats shows no billing queue: $(cat "$BH_TMP/stats.3")"
after=$(sweeps)
[ "$after" = "$before" ] || fail "three runs of 'jobs stats' queued $((after - before)) billing.sweep job(s)"
pass "jobs stats queued no billing.sweep ($before before, $after after)"

# The control: a process that runs workers does arm the chain.
"$BH_BIN" worker >"$BH_TMP/server-worker.log" 2>&1 &
BH_PIDS+=($!)
for i in $(seq 1 50); do
    [ "$(sweeps)" -gt "$before" ] && break
    sleep 0.1
done
[ "$(sweeps)" -gt "$before" ] || fail "bulkhead worker armed no billing.sweep"
pass "bulkhead worker arms the sweep chain"
