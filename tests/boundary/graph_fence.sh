#!/usr/bin/env bash
# The module graph must be acyclic and name only existing modules: the same
# check CMake runs at configure time, fed with fixture manifests.
set -euo pipefail
: "${BH_SOURCE_DIR:?}"
graph=$BH_SOURCE_DIR/cmake/ModuleGraph.cmake
fix=$BH_SOURCE_DIR/tests/boundary/fixtures
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(cmake -DMODULES_DIR="$BH_SOURCE_DIR/modules" -P "$graph" 2>&1) || fail "real graph refused: $out"
echo "ok - the real module graph is acyclic ($out)"
if out=$(cmake -DMODULES_DIR="$fix/cycle" -P "$graph" 2>&1); then fail "a cycle was accepted"; fi
grep -q "module graph has a cycle: alpha -> beta -> gamma -> alpha" <<<"$out" || fail "unexpected: $out"
echo "ok - a cycle is refused and named"
if out=$(cmake -DMODULES_DIR="$fix/unknown" -P "$graph" 2>&1); then fail "an unknown dependency was accepted"; fi
grep -q "depends on unknown module" <<<"$out" || fail "unexpected: $out"
echo "ok - a dependency on an unknown module is refused"
