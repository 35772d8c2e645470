#!/usr/bin/env bash
# Fence 2 around the platform: exactly what platform/include declares is
# global; everything else is sealed. Each refusal is shown, each with the
# control that lets the same code through once its fence is removed:
#   - a module that calls a platform function platform/include does not
#     declare fails the symbol audit (a declared one passes);
#   - the same call, linked without the audit, is an undefined reference
#     against the sealed platform (and links against the unsealed one);
#   - the built platform exports nothing but its declared names;
#   - the platform's own audit refuses a public-looking private name, a
#     global outside the naming rule, a bh__ name in a public header and a
#     call up into a module.
set -euo pipefail
: "${BH_BUILD_DIR:?}" "${BH_SOURCE_DIR:?}"
fence=$BH_BUILD_DIR/fence
seal=$BH_SOURCE_DIR/cmake/seal-module
seal_platform=$BH_SOURCE_DIR/cmake/seal-platform
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

# A private platform function (global before the seal, bh__) and a declared one.
private=$(nm --defined-only -g "$fence/platform.prelinked.o" | awk '$2 == "T" {print $3}' |
          grep '^bh__' | sort -u | head -1 || true)
[ -n "$private" ] || fail "the platform has no private global function to trespass on"
public=$(nm --defined-only -g "$fence/platform.sealed.o" | awk '$2 == "T" {print $3}' | sort -u | head -1)
[ -n "$public" ] || fail "the sealed platform exports no function"

mkdir -p "$work/trespass/src" "$work/fence"
cp "$fence"/*.syms "$work/fence/"
printf 'void trespass_run(void);\n' >"$work/trespass.h"
printf 'int main(void);\nvoid trespass_run(void);\nint main(void) { trespass_run(); return 0; }\n' >"$work/main.c"
"$BH_CC" "${cflags[@]}" "$work/main.c" -o "$work/main.o"
build_trespasser() { # $1 = the platform function to call
    printf 'extern void %s(void);\nvoid trespass_run(void);\nvoid trespass_run(void) { %s(); }\n' \
        "$1" "$1" >"$work/trespass/src/trespass.c"
    "$BH_CC" "${cflags[@]}" "$work/trespass/src/trespass.c" -o "$work/trespass.o"
}
seal_trespasser() {
    "$seal" --name trespass --header "$work/trespass.h" --src "$work/trespass/src" \
        --deps= --modules="$all_csv,trespass" --fence-dir "$work/fence" -- "$work/trespass.o" 2>&1
}
link_with() { # $1 = the platform object; the trespasser unsealed, so only the link decides
    # shellcheck disable=SC2086
    "$BH_CC" "${ldflags[@]}" -o "$work/a.out" "$work/main.o" "$work/trespass.o" "$1" \
        $BH_LINK_LIBS 2>&1
}

# 1. The audit: a module calls a platform function platform/include does not declare.
build_trespasser "$private"
if out=$(seal_trespasser); then fail "the audit accepted a call to the platform's private $private"; fi
grep -q "platform/include does not declare" <<<"$out" || fail "unexpected audit output: $out"
pass "a module calling the platform's private $private fails the audit"
build_trespasser "$public"
seal_trespasser >/dev/null || fail "control: a call to the declared $public should pass the audit"
pass "control: a call to the declared $public passes"

# 2. The link: the same private call is an undefined reference against the seal.
build_trespasser "$private"
if out=$(link_with "$fence/platform.sealed.o"); then
    fail "the link accepted a call to the platform's private $private"
fi
grep -q "undefined reference to \`$private'" <<<"$out" || fail "unexpected link error: $out"
pass "calling the platform's private $private is an undefined reference at link time"
link_with "$fence/platform.prelinked.o" >/dev/null ||
    fail "control: the same link should succeed against the unsealed platform"
pass "control: without the seal the same call links (the seal is what refuses it)"

# 3. The built platform exports exactly its declared names.
extra=$(nm --defined-only -g "$fence/platform.sealed.o" | awk '{print $3}' | sort -u |
        comm -23 - "$fence/platform.syms")
[ -z "$extra" ] || fail "the sealed platform exports undeclared symbols: $extra"
declared=$(grep -ohE '\bbh_[A-Za-z0-9_]+' "$BH_SOURCE_DIR"/platform/include/platform/*.h | sort -u)
undeclared=$(comm -23 "$fence/platform.syms" <(echo "$declared"))
[ -z "$undeclared" ] || fail "platform.syms names what platform/include does not: $undeclared"
pass "the sealed platform exports $(wc -l <"$fence/platform.syms") symbols, each declared in platform/include"

# 4. The platform's own audit, on a miniature platform.
mini=$work/mini
mkdir -p "$mini/include/platform" "$mini/src"
printf 'int bh_mini_run(void);\n' >"$mini/include/platform/mini.h"
mini_seal() { # $1 = the body of mini.c; prints the audit's complaint
    printf '#include "platform/mini.h"\n%s\n' "$1" >"$mini/src/mini.c"
    "$BH_CC" "${cflags[@]}" -I"$mini/include" "$mini/src/mini.c" -o "$mini/mini.o" 2>&1 || return 2
    "$seal_platform" --include "$mini/include" --src "$mini/src" --modules="$all_csv" \
        --fence-dir "$mini/fence" -- "$mini/mini.o" 2>&1
}
helper='int %s(void);\nint %s(void) { return 1; }\nint bh_mini_run(void) { return %s(); }'
# shellcheck disable=SC2059
if out=$(mini_seal "$(printf "$helper" bh_mini_helper bh_mini_helper bh_mini_helper)"); then
    fail "the platform audit accepted an undeclared bh_ name"
fi
grep -q "platform/include does not declare" <<<"$out" || fail "unexpected audit output: $out"
pass "a public-looking platform name that platform/include does not declare fails the audit"
# shellcheck disable=SC2059
if out=$(mini_seal "$(printf "$helper" mini_helper mini_helper mini_helper)"); then
    fail "the platform audit accepted a global outside the naming rule"
fi
grep -q "outside the naming rule" <<<"$out" || fail "unexpected audit output: $out"
pass "a global platform symbol that is neither bh_ nor bh__ fails the audit"
# shellcheck disable=SC2059
out=$(mini_seal "$(printf "$helper" bh__mini_helper bh__mini_helper bh__mini_helper)") ||
    fail "control: a bh__ helper should pass the platform audit: $out"
nm "$mini/fence/platform.sealed.o" | grep -qE ' t bh__mini_helper$' ||
    fail "control: bh__mini_helper should be local in the sealed object"
nm "$mini/fence/platform.sealed.o" | grep -qE ' T bh_mini_run$' ||
    fail "control: bh_mini_run should stay global"
pass "control: a bh__ helper passes and is sealed; the declared bh_mini_run stays global"
printf 'int bh_mini_run(void);\nstruct bh__mini_state;\n' >"$mini/include/platform/mini.h"
if out=$(mini_seal 'int bh_mini_run(void) { return 0; }'); then
    fail "the platform audit accepted a bh__ name in a public header"
fi
grep -q "public header names a private" <<<"$out" || fail "unexpected audit output: $out"
printf 'int bh_mini_run(void);\n' >"$mini/include/platform/mini.h"
pass "a private bh__ name in a public header fails the audit"
up="${modules[0]}_anything"
if out=$(mini_seal "int $up(void);
int bh_mini_run(void) { return $up(); }"); then
    fail "the platform audit accepted a call up into a module"
fi
grep -q "calls up into module" <<<"$out" || fail "unexpected audit output: $out"
pass "the platform calling up into module ${modules[0]} fails the audit"
echo "platform fence: 7 refusals and their controls verified"
