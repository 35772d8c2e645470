#!/usr/bin/env bash
# The source side of fence 3: module code never names a role (only the
# platform switches roles) and never names another module's schema in SQL.
set -euo pipefail
: "${BH_SOURCE_DIR:?}" "${BH_BUILD_DIR:?}"
source "$BH_BUILD_DIR/fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
cd "$BH_SOURCE_DIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
# grep -nEi over files, without comment lines: comments may name anything.
code_grep() {
    local pattern=$1; shift
    grep -nEi "$pattern" "$@" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(--|/?\*|//)'
}
for m in "${modules[@]}"; do
    files=(modules/"$m"/src/*.c)
    [ -e "${files[0]}" ] || continue
    mig=(migrations/"$m"/*.sql)
    [ -e "${mig[0]}" ] || mig=()
    # Comments may name a role ("runs as bh_billing"); code and SQL may not.
    if hits=$(code_grep '(SET( LOCAL)? ROLE[[:space:]]+[A-Za-z_"]|\bbh_(platform|'"$(IFS='|'; echo "${modules[*]}")"')\b[^.(_])' "${files[@]}" "${mig[@]}"); then
        fail "module $m names a role: $hits"
    fi
    for o in "${modules[@]}" platform; do
        [ "$o" = "$m" ] && continue
        if hits=$(code_grep "\b(FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES)[[:space:]]+$o\." "${files[@]}" "${mig[@]}"); then
            fail "module $m names schema $o in SQL: $hits"
        fi
    done
done
echo "ok - no module SQL names a role or another module's schema"
