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

# Every pattern section has the seven parts of the template.
awk '
    function report() {
        if (title != "" && title != "Before the demos")
            for (k = 1; k <= 7; k++)
                if (!(part[k] in seen)) { printf "FAIL: docs/patterns.md, \"%s\" has no %s\n", title, part[k]; bad = 1 }
        delete seen
    }
    BEGIN { split("What.|Where|See it|Fails safely|Tests|When not to use it|What it costs", part, "|") }
    /^## / { report(); title = substr($0, 4) }
    /^\*\*What\.\*\*/ { seen["What."] }
    /^\*\*Where/ { seen["Where"] }
    /^\*\*See it/ { seen["See it"] }
    /\*\*Fails safely/ { seen["Fails safely"] }
    /\*\*Tests?:\*\*/ { seen["Tests"] }
    /^\*\*When not to use it/ { seen["When not to use it"] }
    /^\*\*What it costs/ { seen["What it costs"] }
    END { report(); exit bad }
' "$BH_SOURCE_DIR/docs/patterns.md" >&2
echo "ok - every pattern section says what, where, how to see it, how it fails safely, its tests, when not to use it and what it costs"
