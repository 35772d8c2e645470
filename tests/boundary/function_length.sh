#!/usr/bin/env bash
# No function in platform/, app/ or modules/*/{src,include} is longer than
# 60 lines unless the comment directly above it says why, on a line that
# starts `/* Long because` (or `* Long because` inside a longer comment).
# Extents come from Universal Ctags (`end:` field); every function body the
# formatter lays out (a `{` alone in column 0 after a line ending in `)`)
# must be one ctags measured, so a function ctags cannot parse fails instead
# of passing unseen. It runs on itself with a planted long function, and
# must fail there.
#   function_length.sh [FILE.c|DIR...]   (default: the tree's C sources)
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
cd "$BH_SOURCE_DIR"
MAX_LINES=60

ctags --version 2>/dev/null | grep -q 'Universal Ctags' ||
    { echo "FAIL: Universal Ctags is needed (scripts/bootstrap installs universal-ctags)" >&2; exit 1; }

check() {
    python3 - "$MAX_LINES" "$@" <<'PY'
import os, re, subprocess, sys

limit = int(sys.argv[1])
files = []
for a in sys.argv[2:]:
    if os.path.isdir(a):
        for d, _, names in os.walk(a):
            files += [os.path.join(d, n) for n in sorted(names) if n.endswith((".c", ".h"))]
    else:
        files.append(a)
files.sort()
out = subprocess.run(["ctags", "--languages=C", "--langmap=C:.c.h", "--kinds-C=f",
                      "--fields=+ne", "-x", "--_xformat=%F\t%n\t%e\t%N"] + files,
                     capture_output=True, text=True, check=True).stdout
funcs = {}
for row in out.splitlines():
    f, start, end, name = row.split("\t")
    if end == "":
        print(f"FAIL: {f}:{start}: ctags found no end for {name}()", file=sys.stderr)
        sys.exit(1)
    funcs.setdefault(f, []).append((int(start), int(end), name))

comment_re = re.compile(r"^\s*(/\*|\*|//)|\*/\s*$")
marker_re = re.compile(r"^\s*(/\*+|\*|//)\s*Long because\s+\w")
bad, long_ok, measured = [], [], 0
for f in files:
    lines = open(f, encoding="utf-8", errors="replace").read().split("\n")
    spans = funcs.get(f, [])
    # Every body the formatter opens in column 0 after a signature is measured.
    for i, text in enumerate(lines):
        if text.startswith("{") and i > 0 and lines[i - 1].rstrip().endswith(")"):
            if not any(s <= i + 1 <= e for s, e, _ in spans):
                bad.append(f"{f}:{i + 1}: a function body ctags did not measure")
    for start, end, name in spans:
        measured += 1
        length = end - start + 1
        if length <= limit:
            continue
        # The comment lines directly above the first line of the definition.
        i = start - 2
        above = []
        while i >= 0 and lines[i].strip() and comment_re.search(lines[i]):
            above.append(lines[i])
            i -= 1
        if any(marker_re.match(l) for l in above):
            long_ok.append(f"{f}:{start}: {name}() {length} lines, with its reason")
        else:
            bad.append(f"{f}:{start}: {name}() is {length} lines (over {limit}) "
                       "and no `/* Long because ...` comment above it says why")
for l in long_ok:
    print("long:", l)
for b in bad:
    print("FAIL:", b, file=sys.stderr)
print(f"measured {measured} function(s) in {len(files)} file(s): {len(bad)} too long "
      f"without a reason, {len(long_ok)} long with one")
sys.exit(1 if bad else 0)
PY
}

if [ $# -gt 0 ]; then
    check "$@"
    exit
fi
mapfile -t sources < <(git ls-files -co --exclude-standard -- \
    'platform/*.c' 'platform/*.h' 'app/*.c' 'app/*.h' \
    'modules/*/src/*.c' 'modules/*/src/*.h' 'modules/*/include/*.h')
[ "${#sources[@]}" -gt 0 ] || { echo "FAIL: no C sources found" >&2; exit 1; }
check "${sources[@]}"
echo "ok - no function over $MAX_LINES lines without a written reason"

# The check can fail: a planted function one line over the limit is refused,
# the same with its reason above it passes, and one at the limit passes.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plant() { # $1 = file, $2 = body lines, $3 = comment line above (optional)
    {
        printf '/* A planted function. */\n'
        [ -z "${3:-}" ] || printf '%s\n' "$3"
        printf 'int planted(int x)\n{\n'
        for ((n = 0; n < $2; n++)); do printf '    x += %d;\n' "$n"; done
        printf '    return x;\n}\n'
    } >"$1"
}
plant "$tmp/long.c" $((MAX_LINES - 3))  # signature, {, body, return, } = limit + 1
if check "$tmp/long.c" 2>"$tmp/err" >/dev/null; then
    echo "FAIL: a planted $((MAX_LINES + 1))-line function was not caught" >&2
    exit 1
fi
grep -q "planted() is $((MAX_LINES + 1)) lines" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
echo "ok - a planted $((MAX_LINES + 1))-line function without a reason is refused"

plant "$tmp/reason.c" $((MAX_LINES - 3)) '/* Long because it is a planted table read top to bottom. */'
check "$tmp/reason.c" >/dev/null || { echo "FAIL: a stated reason was not accepted" >&2; exit 1; }
plant "$tmp/bare.c" $((MAX_LINES - 3)) '/* Long because */'
if check "$tmp/bare.c" >/dev/null 2>&1; then
    echo "FAIL: a marker without a reason was accepted" >&2
    exit 1
fi
plant "$tmp/fits.c" $((MAX_LINES - 4))
check "$tmp/fits.c" >/dev/null || { echo "FAIL: a $MAX_LINES-line function was refused" >&2; exit 1; }
echo "ok - the same function with its reason above passes, and one of $MAX_LINES lines passes"

# A body ctags does not report (here: a ctags that loses one function, as
# one confused by a macro would) fails rather than passing unmeasured.
mkdir "$tmp/bin"
real_ctags=$(command -v ctags)
cat >"$tmp/bin/ctags" <<EOF
#!/bin/sh
"$real_ctags" "\$@" | sed '/\thidden\$/d'
EOF
chmod +x "$tmp/bin/ctags"
printf 'int hidden(void)\n{\n    return 0;\n}\n' >"$tmp/hidden.c"
if PATH="$tmp/bin:$PATH" check "$tmp/hidden.c" 2>"$tmp/err" >/dev/null; then
    echo "FAIL: a function body ctags did not report was not caught" >&2
    exit 1
fi
grep -q 'hidden.c:2: a function body ctags did not measure' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
check "$tmp/hidden.c" >/dev/null || { echo "FAIL: control: the real ctags measures hidden()" >&2; exit 1; }
echo "ok - a function body ctags does not report is refused"
