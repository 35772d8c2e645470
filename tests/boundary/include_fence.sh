#!/usr/bin/env bash
# Fence 1: a module is compiled with an include path that shows its own
# src/, the platform and the public headers of the modules it declared —
# nothing else. Each module's real include path (written at configure time)
# must find what it declared and must not find the rest.
set -euo pipefail
: "${BH_BUILD_DIR:?}" "${BH_SOURCE_DIR:?}"
fence=$BH_BUILD_DIR/fence
source "$fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

deps_of() { # the DEPENDS list of a module's manifest
    sed -n 's/.*DEPENDS\([^)]*\)).*/\1/p' "$BH_SOURCE_DIR/modules/$1/module.cmake" | xargs
}
checks=0
for m in "${modules[@]}"; do
    IFS=';' read -r -a incs <"$fence/$m.includes"
    flags=()
    for i in "${incs[@]}"; do flags+=(-I "$i"); done
    deps=" $(deps_of "$m") "
    for other in "${modules[@]}"; do
        printf '#include "%s/%s.h"\nint probe(void);\nint probe(void) { return 0; }\n' "$other" "$other" >"$work/p.c"
        if "$BH_CC" -std=c11 -fsyntax-only $(pkg-config --cflags jansson libpq hiredis) "${flags[@]}" "$work/p.c" 2>"$work/err"; then
            seen=yes
        else
            seen=no
        fi
        if [ "$other" = "$m" ] || [[ "$deps" == *" $other "* ]]; then
            [ $seen = yes ] || fail "$m cannot include $other/$other.h although it may: $(cat "$work/err")"
        else
            [ $seen = no ] || fail "$m can include $other/$other.h without declaring it"
            grep -q "No such file" "$work/err" || fail "unexpected error: $(cat "$work/err")"
        fi
        checks=$((checks + 1))
    done
    # Another module's src/ is never on the path.
    for other in "${modules[@]}"; do
        [ "$other" = "$m" ] && continue
        for f in "$BH_SOURCE_DIR/modules/$other/src/"*.h; do
            [ -e "$f" ] || continue
            h=$(basename "$f")
            [ -e "$BH_SOURCE_DIR/modules/$m/src/$h" ] && continue
            printf '#include "%s"\n' "$h" >"$work/p.c"
            if "$BH_CC" -std=c11 -fsyntax-only "${flags[@]}" "$work/p.c" 2>/dev/null; then
                fail "$m can include $other's private header $h"
            fi
            checks=$((checks + 1))
        done
    done
done
echo "ok - include fence: $checks include checks across ${#modules[@]} modules"
