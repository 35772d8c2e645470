# shellcheck shell=bash
# Postgres helpers for tests that open a race window on purpose (sourced
# after tests/lib/common.sh). They run as the dev environment's superuser
# (BH_PG_ADMIN_URL), outside every module's fence, to look at or hold what
# the server wrote:
#
#   pg SQL                 runs SQL, prints the rows (unaligned, no header)
#   pg_hold_open           opens a session kept across commands (one per test)
#   pg_hold SQL            runs SQL in that session and waits for it to finish;
#                          fails on an error (the session is then unusable)
#   pg_hold_close          ends the session (rolls back what it left open)
#   pg_waiting PATTERN     how many backends wait on a lock while running a
#                          statement matching the SQL LIKE PATTERN
#
# A held session is how a test keeps a row or table lock while the server
# runs into it; the session is closed when the test ends, whatever happens.

: "${BH_PG_ADMIN_URL:?BH_PG_ADMIN_URL comes from scripts/with-devenv}"

pg() { psql "$BH_PG_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

pg_hold_open() {
    mkfifo "$BH_TMP/pg-hold.in"
    psql "$BH_PG_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 <"$BH_TMP/pg-hold.in" \
        >"$BH_TMP/pg-hold.out" 2>&1 &
    BH_PG_HOLD_PID=$!
    BH_PIDS+=("$BH_PG_HOLD_PID")
    exec {BH_PG_HOLD_FD}>"$BH_TMP/pg-hold.in"
    BH_PG_HOLD_N=0
    bh_on_exit pg_hold_close
}

pg_hold() {
    BH_PG_HOLD_N=$((BH_PG_HOLD_N + 1))
    local mark="pg-hold-done-$BH_PG_HOLD_N" i
    printf '%s\n\\echo %s\n' "$1" "$mark" >&"$BH_PG_HOLD_FD"
    for i in $(seq 1 300); do
        grep -qx "$mark" "$BH_TMP/pg-hold.out" && return 0
        kill -0 "$BH_PG_HOLD_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$BH_TMP/pg-hold.out" >&2
    fail "held session: '$1' did not complete"
}

pg_hold_close() {
    [ -n "${BH_PG_HOLD_FD:-}" ] || return 0
    printf 'ROLLBACK;\n\\q\n' >&"$BH_PG_HOLD_FD" 2>/dev/null || true
    exec {BH_PG_HOLD_FD}>&-
    BH_PG_HOLD_FD=
    # A session stuck in a statement would keep its locks: end it.
    for _ in $(seq 1 50); do kill -0 "$BH_PG_HOLD_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$BH_PG_HOLD_PID" 2>/dev/null || true
    wait "$BH_PG_HOLD_PID" 2>/dev/null || true
}

pg_waiting() {
    pg "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
          AND datname = current_database() AND query LIKE '$1'"
}
