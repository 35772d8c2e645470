#!/usr/bin/env bash
# Each module's doc ends with a "Where things are" table, and the table is
# true: every row names a file and the functions that do the behaviour, and
# each function is defined in that file (Universal Ctags reads the
# definitions). A renamed or moved function fails here until the table
# follows it.
#   docs_where.sh [FILE.md...]   (default: docs/*.md; docs/<m>.md of every module must have one)
# Row format:  | behaviour | `src/file.c` | `fn()`, `other_fn()` |
# A path is relative to modules/<m>/ in docs/<m>.md, or to the repository
# root when it starts with a top-level directory (platform/, app/, modules/).
# It runs on itself with a table that names a function in the wrong file, and
# must fail there.
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
cd "$BH_SOURCE_DIR"

ctags --version 2>/dev/null | grep -q 'Universal Ctags' ||
    { echo "FAIL: Universal Ctags is needed (scripts/bootstrap installs universal-ctags)" >&2; exit 1; }

check() { # $1 = 1 when every module doc must have a table; then the docs
    python3 - "$@" <<'PY'
import glob, os, re, subprocess, sys

require = sys.argv[1] == "1"
docs = sys.argv[2:]
modules = sorted(os.path.basename(p) for p in glob.glob("modules/*") if os.path.isdir(p))
HEADING = "## Where things are"
tick = re.compile(r"`([^`]+)`")
defined = {}

def functions_in(path):
    if path not in defined:
        out = subprocess.run(["ctags", "--languages=C", "--langmap=C:.c.h", "--kinds-C=f",
                              "-x", "--_xformat=%N", path],
                             capture_output=True, text=True, check=True).stdout
        defined[path] = set(out.split())
    return defined[path]

bad, rows = [], 0
for doc in docs:
    mod = os.path.splitext(os.path.basename(doc))[0]
    lines = open(doc, encoding="utf-8").read().split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() == HEADING]
    if not starts:
        if require and mod in modules:
            bad.append(f"{doc}: no '{HEADING}' section")
        continue
    table = 0
    for n in range(starts[0] + 1, len(lines)):
        line = lines[n].strip()
        if line.startswith("## "):
            break
        if not line.startswith("|") or re.match(r"^\|[\s:|-]+\|$", line):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3 or cells[1].lower() == "file":
            continue
        table += 1
        where = f"{doc}:{n + 1}"
        files = tick.findall(cells[1])
        names = [t[:-2] for t in tick.findall(cells[2]) if re.fullmatch(r"\w+\(\)", t)]
        if len(files) != 1 or not names:
            bad.append(f"{where}: a row names one `file` and at least one `function()`")
            continue
        path = files[0]
        if mod in modules and not path.startswith(("platform/", "app/", "modules/")):
            path = f"modules/{mod}/{path}"
        if not path.endswith((".c", ".h")) or not os.path.isfile(path):
            bad.append(f"{where}: no such C file: {path}")
            continue
        for name in names:
            if name not in functions_in(path):
                bad.append(f"{where}: {name}() is not defined in {path}")
    rows += table
    if table == 0:
        bad.append(f"{doc}: '{HEADING}' has no rows")
for b in bad:
    print("FAIL:", b, file=sys.stderr)
print(f"checked {rows} row(s) in {len(docs)} doc(s): {len(bad)} untrue")
sys.exit(1 if bad else 0)
PY
}

if [ $# -gt 0 ]; then
    check 0 "$@"
    exit
fi
check 1 docs/*.md
echo "ok - every module doc says where things are, and each function is where it says"

# The check can fail: a function named in the wrong file, a missing file and
# a module doc without a table are refused; the true row passes.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/wrong.md" <<'MD'
## Where things are

| behaviour | file | function |
|---|---|---|
| the route table | `platform/src/http.c` | `bh__route_find()` |
| nothing | `platform/src/no_such_file.c` | `bh_nothing()` |
MD
if check 0 "$tmp/wrong.md" 2>"$tmp/err" >/dev/null; then
    echo "FAIL: a function in the wrong file was not caught" >&2
    exit 1
fi
if ! grep -q 'bh__route_find() is not defined in platform/src/http.c' "$tmp/err" ||
    ! grep -q 'no such C file: platform/src/no_such_file.c' "$tmp/err"; then
    cat "$tmp/err" >&2
    exit 1
fi
echo "ok - a table naming a function in the wrong file, or a missing file, is refused"

printf '# A module\n\nNo table.\n' >"$tmp/auth.md"
if check 1 "$tmp/auth.md" 2>/dev/null >/dev/null; then
    echo "FAIL: a module doc without its table was not caught" >&2
    exit 1
fi
cat >"$tmp/right.md" <<'MD'
## Where things are

| behaviour | file | function |
|---|---|---|
| an error's status | `platform/src/reply.c` | `bh_reply_err()` |
MD
check 0 "$tmp/right.md" >/dev/null || { echo "FAIL: control: a true row was refused" >&2; exit 1; }
echo "ok - a module doc without the table is refused, and a true row passes"
