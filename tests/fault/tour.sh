#!/usr/bin/env bash
# The tour (scripts/tour, `make tour`) runs in the suite, on the harness's
# environment: a demo in docs/patterns.md that drifts from what the code does
# fails the build. It stops and starts the shared Postgres and Redis, so it
# runs alone (tests/fault). It runs twice: every step must be repeatable on
# the same environment (fresh users, keys and ids each time).
source "$(dirname "$0")/../lib/common.sh"
[ -n "${BH_DEVENV_DIR:-}" ] || skip "no dev environment (run under scripts/with-devenv)"
cd "$BH_SOURCE_DIR"
for run in 1 2; do
    start=$(date +%s)
    BH_BIN="$BH_BIN" TOUR_QUIET=1 TOUR_KEEP='' scripts/tour --env "$BH_DEVENV_DIR" \
        >"$BH_TMP/tour.$run" 2>&1 || { cat "$BH_TMP/tour.$run" >&2; fail "tour run $run failed"; }
    grep '^tour: .* checks passed' "$BH_TMP/tour.$run"
    pass "tour run $run passed in $(($(date +%s) - start)) s"
done
