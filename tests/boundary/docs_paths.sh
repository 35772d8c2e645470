#!/usr/bin/env bash
# Every file path and C function the docs name exists in the tree: a doc that
# still points at a renamed file or a removed function fails the build.
#   docs_paths.sh [DIR|FILE.md...]   (default: README.md, docs/ and docs/adr/)
# What counts as a name: a path under a top-level directory of the
# repository (app/, platform/, modules/, tests/, scripts/, cmake/, migrations/,
# docs/, bench/), anywhere in the text; src/... and include/... in a module's
# doc (docs/<module>.md), relative to modules/<module>/; `name()` in
# backticks (a C function); and backticked identifiers with a module or
# platform prefix (bh_, auth_, billing_, tasks_, notifications_, bulkhead_):
# functions, but also metric names, which must exist in the source as well.
# Placeholders (<m>, {a,b}) are not names. It runs on itself with a doc that
# names a missing file and a missing function, and must fail there.
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
cd "$BH_SOURCE_DIR"

check() {
    python3 - "$@" <<'PY'
import glob, os, re, subprocess, sys

root = os.getcwd()
docs = []
for d in sys.argv[1:]:
    docs += [d] if d.endswith(".md") else sorted(glob.glob(os.path.join(d, "*.md")))
tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True,
                         text=True, check=True).stdout.split()
source = {}
for f in tracked:
    if f.startswith("docs/") or not os.path.isfile(f):
        continue
    try:
        source[f] = open(f, encoding="utf-8", errors="replace").read()
    except OSError:
        pass
c_text = "\n".join(t for f, t in source.items() if f.endswith((".c", ".h")))
all_text = "\n".join(source.values())
modules = {os.path.basename(p) for p in glob.glob("modules/*") if os.path.isdir(p)}

TOP = r"(?:app|platform|modules|tests|scripts|cmake|migrations|docs|bench)"
path_re = re.compile(r"(?<![\w./:-])(" + TOP + r"/[\w./*-]*[\w*])")
rel_re = re.compile(r"(?<![\w./:-])((?:src|include)/[\w./-]*\.[ch])\b")
tick_re = re.compile(r"`([^`\n]+)`")
call_re = re.compile(r"^([A-Za-z_]\w*)\(")
prefixed_re = re.compile(r"^(?:bh|auth|billing|tasks|notifications|bulkhead)_\w+$")

def exists(p):
    if any(ch in p for ch in "*?["):
        return bool(glob.glob(p))
    return os.path.exists(p)

bad = []
for doc in docs:
    text = open(doc, encoding="utf-8").read()
    mod = os.path.splitext(os.path.basename(doc))[0]
    for n, line in enumerate(text.splitlines(), 1):
        if "<" in line and re.search(r"<[a-z_ ]+>", line):
            line = re.sub(r"\S*<[a-z_ ]+>\S*", " ", line)   # placeholders
        line = re.sub(r"\S*\{[^}]*,[^}]*\}\S*", " ", line)   # brace lists
        line = re.sub(r"https?://\S+", " ", line)
        for m in path_re.finditer(line):
            p = m.group(1).rstrip(".")
            if not exists(p):
                bad.append(f"{doc}:{n}: no such file: {p}")
        if mod in modules:
            for m in rel_re.finditer(line):
                p = f"modules/{mod}/{m.group(1)}"
                if not exists(p) and not exists(m.group(1)):
                    bad.append(f"{doc}:{n}: no such file: {m.group(1)} (in modules/{mod}/)")
        for m in tick_re.finditer(line):
            tok = m.group(1).strip()
            c = call_re.match(tok)
            if c:
                name = c.group(1)
                if not re.search(r"\b" + re.escape(name) + r"\b", c_text):
                    bad.append(f"{doc}:{n}: no C function or macro named {name}")
            elif prefixed_re.match(tok):
                if not re.search(r"\b" + re.escape(tok) + r"\b", all_text):
                    bad.append(f"{doc}:{n}: {tok} is named nowhere in the source")
for b in bad:
    print("FAIL:", b, file=sys.stderr)
print(f"checked {len(docs)} document(s): {len(bad)} stale name(s)")
sys.exit(1 if bad else 0)
PY
}

dirs=(README.md docs)
[ -d docs/adr ] && dirs+=(docs/adr)
check "${@:-${dirs[@]}}"
echo "ok - every file and function named in the docs exists"

# The check can fail.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'See `platform/src/no_such_file.c` and `bh_no_such_function()`.\n' >"$tmp/stale.md"
if check "$tmp" 2>"$tmp/err"; then
    echo "FAIL: a stale path and function were not caught" >&2
    exit 1
fi
grep -q 'no_such_file.c' "$tmp/err" && grep -q 'bh_no_such_function' "$tmp/err" ||
    { cat "$tmp/err" >&2; exit 1; }
echo "ok - a doc naming a missing file and function is refused"
