#!/usr/bin/env bash
# Fence 2, the link seal, and its audit, each shown refusing a trespass and
# each shown to let the same code through once its fence is removed:
#   - a call into another module's internal function is an undefined
#     reference at the final link (and links when the module is not sealed);
#   - an undeclared use of another module's public function fails the audit
#     (and passes once declared);
#   - an undefined weak reference fails the audit;
#   - a plain inline function in a public header fails the audit;
#   - a relative include that climbs out of the module fails the audit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BH_BUILD_DIR:?}" "${BH_SOURCE_DIR:?}"
fence=$BH_BUILD_DIR/fence
seal=$BH_SOURCE_DIR/cmake/seal-module
# shellcheck disable=SC1091
source "$fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
all_csv=$(IFS=,; echo "${modules[*]}")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

cflags=(-std=c11 -c -fno-common)
[ "$BH_SANITIZE" = ON ] && cflags+=(-fsanitize=address,undefined)
ldflags=()
[ "$BH_SANITIZE" = ON ] && ldflags+=(-fsanitize=address,undefined)

# A symbol that is global inside a module but not part of its public API:
# exactly what the seal must hide.
victim= internal=
for m in "${modules[@]}"; do
    internal=$(nm --defined-only -g "$fence/$m.prelinked.o" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
               sort -u | comm -23 - "$fence/$m.syms" | grep -v '^__' | head -1 || true)
    if [ -n "$internal" ]; then victim=$m; break; fi
done
[ -n "$victim" ] || fail "no module has an internal global symbol to trespass on"
public=$(head -1 "$fence/$victim.syms")

# The trespassing module: public API trespass_run(), a main to link it.
mkdir -p "$work/trespass/src"
printf 'void trespass_run(void);\n' >"$work/trespass.h"
printf 'int main(void);\nvoid trespass_run(void);\nint main(void) { trespass_run(); return 0; }\n' >"$work/main.c"
"$BH_CC" "${cflags[@]}" "$work/main.c" -o "$work/main.o"

build_trespasser() { # $1 = symbol to call, $2 = extra declaration attributes
    printf 'extern void %s(void) %s;\nvoid trespass_run(void);\nvoid trespass_run(void) { %s(); }\n' \
        "$1" "${2:-}" "$1" >"$work/trespass/src/trespass.c"
    "$BH_CC" "${cflags[@]}" "$work/trespass/src/trespass.c" -o "$work/trespass.o"
}
seal_trespasser() { # $1 = declared deps (csv); prints the audit's complaint
    "$seal" --name trespass --header "$work/trespass.h" --src "$work/trespass/src" \
        --deps="$1" --modules="$all_csv,trespass" --fence-dir "$work/fence" -- "$work/trespass.o" 2>&1
}
link_all() { # $1 = the victim's object to link with
    local objs=()
    for m in "${modules[@]}"; do
        if [ "$m" = "$victim" ]; then objs+=("$1"); else objs+=("$fence/$m.sealed.o"); fi
    done
    # shellcheck disable=SC2086
    "$BH_CC" "${ldflags[@]}" -o "$work/a.out" "$work/main.o" "$work/fence/trespass.sealed.o" \
        "${objs[@]}" "$BH_PLATFORM_LIB" $BH_LINK_LIBS 2>&1
}
mkdir -p "$work/fence"
cp "$fence"/*.syms "$work/fence/"

# 1. Calling another module's internal function.
build_trespasser "$internal"
seal_trespasser "$victim" >/dev/null || fail "audit refused a declared dependency"
if out=$(link_all "$fence/$victim.sealed.o"); then
    fail "the link accepted a call to $victim's internal $internal"
fi
grep -q "undefined reference to \`$internal'" <<<"$out" || fail "unexpected link error: $out"
pass "calling $victim's internal $internal is an undefined reference at link time"
link_all "$fence/$victim.prelinked.o" >/dev/null ||
    fail "control: the same link should succeed against the unsealed object"
pass "control: without the seal the same call links (the fence is what refuses it)"

# 2. Using a public function of a module that was not declared.
build_trespasser "$public"
if out=$(seal_trespasser ""); then fail "audit accepted an undeclared use of $victim's $public"; fi
grep -q "without declaring it" <<<"$out" || fail "unexpected audit output: $out"
pass "using $victim's public $public without DEPENDS fails the audit"
seal_trespasser "$victim" >/dev/null || fail "control: declared use should pass the audit"
pass "control: the same use passes once declared"

# 3. An undefined weak reference would link silently.
build_trespasser "$internal" "__attribute__((weak))"
if out=$(seal_trespasser "$victim"); then fail "audit accepted an undefined weak symbol"; fi
grep -q "undefined weak" <<<"$out" || fail "unexpected audit output: $out"
pass "an undefined weak reference fails the audit"

# 4. Only static inline in a public header.
build_trespasser "$public"
printf 'void trespass_run(void);\ninline int trespass_twice(int x) { return 2 * x; }\n' >"$work/trespass.h"
if out=$(seal_trespasser "$victim"); then fail "audit accepted a plain inline in a public header"; fi
grep -q "not static inline" <<<"$out" || fail "unexpected audit output: $out"
printf 'void trespass_run(void);\nstatic inline int trespass_twice(int x) { return 2 * x; }\n' >"$work/trespass.h"
seal_trespasser "$victim" >/dev/null || fail "control: static inline should pass"
pass "a plain inline in a public header fails the audit; static inline passes"

# 5. A relative include that leaves the module.
printf '#include "../../%s/src/whatever.h"\n' "$victim" >"$work/trespass/src/sneaky.h"
if out=$(seal_trespasser "$victim"); then fail "audit accepted a relative include"; fi
grep -q "relative include" <<<"$out" || fail "unexpected audit output: $out"
pass "a relative include out of the module fails the audit"
echo "link fence: 5 refusals and their controls verified"
