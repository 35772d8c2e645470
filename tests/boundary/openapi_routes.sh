#!/usr/bin/env bash
# Every route the binary mounts is described in docs/openapi.yaml with the
# same method, and the description names no route that does not exist.
# Path parameters are compared by position, not by name.
set -euo pipefail
: "${BH_BIN:?}" "${BH_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
mounted=$("$BH_BIN" routes | awk 'NR > 1 {print $1, $2}' | sed 's/{[^}]*}/{}/g' | sort)
described=$(python3 - "$BH_SOURCE_DIR/docs/openapi.yaml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
for path, item in doc.get("paths", {}).items():
    for method in item:
        if method in ("get", "put", "post", "delete", "patch"):
            print(method.upper(), path)
PY
)
described=$(sed 's/{[^}]*}/{}/g' <<<"$described" | sort)
missing=$(comm -23 <(echo "$mounted") <(echo "$described"))
extra=$(comm -13 <(echo "$mounted") <(echo "$described"))
[ -z "$missing" ] || fail "routes missing from docs/openapi.yaml:"$'\n'"$missing"
[ -z "$extra" ] || fail "docs/openapi.yaml describes routes that do not exist:"$'\n'"$extra"
echo "ok - all $(wc -l <<<"$mounted") routes are in docs/openapi.yaml, and nothing else is"
