#!/usr/bin/env bash
# Fence 4, in Redis: each module's ACL user reaches only keys under its own
# prefix. Checked for every pair of modules against the running Redis.
set -euo pipefail
: "${REDIS_PORT:?}" "${BULKHEAD_REDIS_PASSWORD:?}" "${BH_BUILD_DIR:?}"
source "$BH_BUILD_DIR/fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
fail() { echo "FAIL: $*" >&2; exit 1; }
as() { local user=$1; shift; redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning --user "$user" --pass "$BULKHEAD_REDIS_PASSWORD" "$@" 2>&1; }
checks=0
for m in "${modules[@]}"; do
    for other in "${modules[@]}"; do
        out=$(as "$m" GET "$other:fence-probe")
        if [ "$m" = "$other" ]; then
            grep -q NOPERM <<<"$out" && fail "$m cannot read its own keys: $out"
        else
            grep -q NOPERM <<<"$out" || fail "$m read $other:fence-probe: $out"
        fi
        checks=$((checks + 1))
    done
    out=$(as "$m" GET "bh:fence-probe")
    grep -q NOPERM <<<"$out" || fail "$m read the platform's queue keys: $out"
    out=$(as "$m" KEYS '*')
    grep -q NOPERM <<<"$out" || fail "$m may run KEYS: $out"
done
out=$(as tasks GET auth:session:probe)
grep -q NOPERM <<<"$out" || fail "tasks read auth:*"
echo "ok - $checks user/prefix pairs: each module user reaches only its own keys (tasks → auth:*: $out)"
