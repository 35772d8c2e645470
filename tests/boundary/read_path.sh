#!/usr/bin/env bash
# Where a read goes (docs/style.md): a module's handlers (src/http*.c) call
# its service layer and never reach past it: no call into repo.c
# (<module>__repo_*), no transaction opened (bh_tx_begin), no query or Redis
# command of their own (bh_db_query, bh_redis, bh_redis_script). Calls are
# read from the objects' undefined symbols, so comments and strings do not
# count. A module in KNOWN still has handlers that read past the service
# layer: it is reported, not failed, and the test fails once it is clean so
# the entry is removed with the fix.
set -euo pipefail
: "${BH_BUILD_DIR:?}" "${BH_SOURCE_DIR:?}"
# shellcheck disable=SC1091
source "$BH_BUILD_DIR/fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
KNOWN=" auth notifications "
fail() { echo "FAIL: $*" >&2; exit 1; }

# $1 = module, $2... = handler objects; prints the symbols they must not use.
reaches_past() {
    local m=$1
    shift
    nm -u "$@" 2>/dev/null | awk '{print $NF}' |
        grep -E "^(${m}__repo_[A-Za-z0-9_]+|bh_tx_begin(_as)?|bh_db_query(_as)?|bh_redis(_as)?|bh_redis_script(_as)?)$" |
        sort -u || true
}

# The check itself: a handler object that calls repo.c is caught, one that
# calls the service is not.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'int demo__repo_get(int);\nint h(int x) { return demo__repo_get(x); }\n' >"$work/bad.c"
printf 'int demo__get(int);\nint h(int x) { return demo__get(x); }\n' >"$work/good.c"
for f in bad good; do "$BH_CC" -std=c11 -c "$work/$f.c" -o "$work/$f.o"; done
[ "$(reaches_past demo "$work/bad.o")" = demo__repo_get ] || fail "a handler calling repo.c was not caught"
[ -z "$(reaches_past demo "$work/good.o")" ] || fail "control: a handler calling its service was refused"
echo "ok - a handler calling repo.c is caught, one calling its service is not"

for m in "${modules[@]}"; do
    objs=("$BH_BUILD_DIR"/CMakeFiles/bh_mod_"$m".dir/modules/"$m"/src/http*.o)
    [ -e "${objs[0]}" ] || fail "no handler objects for $m: build first"
    out=$(reaches_past "$m" "${objs[@]}")
    if [ -z "$out" ]; then
        [[ "$KNOWN" != *" $m "* ]] || fail "$m's handlers read through its service now: remove it from KNOWN"
        echo "ok - $m: handlers call the service layer only"
    elif [[ "$KNOWN" == *" $m "* ]]; then
        echo "known - $m: handlers still call ${out//$'\n'/ }"
    else
        fail "$m: handlers reach past the service layer: ${out//$'\n'/ }"
    fi
done
