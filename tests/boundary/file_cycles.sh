#!/usr/bin/env bash
# No call cycle between the files of one part: within the platform and
# within each module, the files call each other one way only
# (scripts/file-graph reads who uses whose symbols from the objects).
set -euo pipefail
: "${BH_BUILD_DIR:?}" "${BH_SOURCE_DIR:?}"
graph=$BH_SOURCE_DIR/scripts/file-graph
# shellcheck disable=SC1091
source "$BH_BUILD_DIR/fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The checker itself: two files that call each other are a cycle.
printf 'void b(void);\nvoid a(void);\nvoid a(void) { b(); }\n' >"$work/one.c"
printf 'void a(void);\nvoid b(void);\nvoid b(void) { a(); }\n' >"$work/two.c"
printf 'void a(void);\nvoid c(void);\nvoid c(void) { a(); }\n' >"$work/three.c"
for f in one two three; do "$BH_CC" -std=c11 -c "$work/$f.c" -o "$work/$f.o"; done
if out=$("$graph" "$work/one.o" "$work/two.o" "$work/three.o"); then
    fail "file-graph missed the cycle one <-> two"
fi
[ "$out" = "cycle: one <-> two" ] || fail "unexpected file-graph output: $out"
"$graph" "$work/one.o" "$work/three.o" >/dev/null || fail "control: one-way calls are no cycle"
echo "ok - file-graph finds a cycle between two files, and none in one-way calls"

check() { # $1 = part, $2... = its objects
    local part=$1 out
    shift
    [ $# -gt 0 ] && [ -e "$1" ] || fail "no objects for $part: build first"
    out=$("$graph" "$@") || fail "$part: call cycle between files: $out"
    echo "ok - $part: no call cycle between its files"
}
check platform "$BH_BUILD_DIR"/CMakeFiles/bh_platform_objs.dir/platform/src/*.o
for m in "${modules[@]}"; do
    check "$m" "$BH_BUILD_DIR"/CMakeFiles/bh_mod_"$m".dir/modules/"$m"/src/*.o
done
