#!/usr/bin/env bash
# docs/notifications.md opens with the module's files: every file it lists
# exists, and every file of the module is listed, so the map stays true.
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$BH_SOURCE_DIR"
doc=docs/notifications.md
# The first code block: "  src/x.c  what it does" under "modules/notifications/",
# and migration paths from the repository root.
listed=$(awk '/^```/{n++; next} n == 1' "$doc" |
    awk '$1 ~ /^(src|include)\// {print "modules/notifications/" $1} $1 ~ /^migrations\// {print $1}' | sort)
[ -n "$listed" ] || fail "no file list in $doc"
for f in $listed; do
    [ -e "$f" ] || fail "$doc lists $f, which does not exist"
done
actual=$( (find modules/notifications/src modules/notifications/include -type f; ls migrations/notifications/*) | sort)
unlisted=$(comm -13 <(echo "$listed") <(echo "$actual"))
[ -z "$unlisted" ] || fail "$doc does not list:"$'\n'"$unlisted"
echo "ok - $doc lists the $(wc -l <<<"$listed") files of the module, and only those"
