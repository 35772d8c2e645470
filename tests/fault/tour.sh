#!/usr/bin/env bash
# The tour (scripts/tour, `make tour`) runs in the suite, on the harness's
# environment: a demo in docs/patterns.md that drifts from what the code does
# fails the build. It stops and starts the shared Postgres and Redis, so it
# runs alone (tests/fault). Then the steps that a fixed id, key or event
# would break on a rerun run again on the same environment: every step must
# be repeatable (fresh users, keys and ids each time). The whole tour twice
# in a row is `make tour ENV=DIR` twice; here the suite's time is kept short.
source "$(dirname "$0")/../lib/common.sh"
[ -n "${BH_DEVENV_DIR:-}" ] || skip "no dev environment (run under scripts/with-devenv)"
cd "$BH_SOURCE_DIR" || exit 1
again=(idempotency webhook rate-limit)
for run in 1 2; do
    start=$(date +%s)
    steps=()
    [ $run = 1 ] || steps=("${again[@]}")
    BH_BIN="$BH_BIN" TOUR_QUIET=1 TOUR_KEEP='' scripts/tour --env "$BH_DEVENV_DIR" "${steps[@]}" \
        >"$BH_TMP/tour.$run" 2>&1 || { cat "$BH_TMP/tour.$run" >&2; fail "tour run $run failed"; }
    grep '^tour: .* checks passed' "$BH_TMP/tour.$run"
    pass "tour run $run passed in $(($(date +%s) - start)) s"
done
