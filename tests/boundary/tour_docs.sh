#!/usr/bin/env bash
# Every demo in docs/patterns.md is a step of scripts/tour, character for
# character (`<!-- tour: NAME -->` before its ```sh block), and every step has
# its demo there; tests/fault/tour.sh runs those steps. `scripts/tour
# --write-docs` rewrites the blocks after a step changes.
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
"$BH_SOURCE_DIR/scripts/tour" --check-docs "$BH_SOURCE_DIR/docs/patterns.md"
echo "ok - docs/patterns.md shows exactly the tour's steps"
# The check can fail: a changed block is caught.
copy=$(mktemp)
trap 'rm -f "$copy"' EXIT
sed '/^<!-- tour: cache -->$/,/^```$/ s/x-cache/x-kache/' "$BH_SOURCE_DIR/docs/patterns.md" >"$copy"
if "$BH_SOURCE_DIR/scripts/tour" --check-docs "$copy" 2>/dev/null; then
    echo "FAIL: a demo edited by hand was not noticed" >&2
    exit 1
fi
echo "ok - a demo that differs from the tour is refused"
