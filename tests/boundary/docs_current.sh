#!/usr/bin/env bash
# docs/architecture.md shows the module graph exactly as the binary reports
# it: a module, dependency, route or event added without `make docs` fails.
set -euo pipefail
: "${BH_BIN:?}" "${BH_SOURCE_DIR:?}"
copy=$(mktemp)
trap 'rm -f "$copy"' EXIT
cp "$BH_SOURCE_DIR/docs/architecture.md" "$copy"
"$BH_SOURCE_DIR/scripts/gen-docs" "$BH_BIN" "$copy"
if ! diff -u "$BH_SOURCE_DIR/docs/architecture.md" "$copy"; then
    echo "FAIL: docs/architecture.md is out of date: run 'make docs'" >&2
    exit 1
fi
echo "ok - docs/architecture.md matches bulkhead modules"
