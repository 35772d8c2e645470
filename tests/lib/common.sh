# Shared helpers for the shell tests (sourced). The dev environment's
# variables (DATABASE_URL, REDIS_URL, ...) come from scripts/with-devenv;
# BH_BIN and BH_SOURCE_DIR from ctest. Each test starts its own server on a
# free port and stops it by PID, also when the test fails.
set -euo pipefail
# Under set -e a failing command ends the test without a word: remember
# which one it was (errtrace: also inside helper functions), so the test's
# output names it.
set -E
trap 'BH_LAST_ERR="${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND (status $?)"' ERR

: "${BH_BIN:?BH_BIN must point at the bulkhead binary}"
: "${BH_SOURCE_DIR:?}"
export BULKHEAD_MIGRATIONS_DIR="$BH_SOURCE_DIR/migrations"
# The secrets come from the environment (scripts/devenv writes random ones
# per install); unset, each test makes its own. All processes of one test
# share them, so several servers agree on tokens.
bh_random_secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
export BULKHEAD_JWT_SECRET="${BULKHEAD_JWT_SECRET:-$(bh_random_secret)}"
export BULKHEAD_OPS_TOKEN="${BULKHEAD_OPS_TOKEN:-$(bh_random_secret)}"
export BULKHEAD_BILLING_WEBHOOK_SECRET="${BULKHEAD_BILLING_WEBHOOK_SECRET:-$(bh_random_secret)}"

BH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bh-test.XXXXXX")
BH_PIDS=()
BH_EXIT_HOOKS=()
# bh_on_exit CMD: run CMD (for example, start a stopped Redis again) when the
# test ends, before its processes are stopped. Use it instead of `trap`, so
# the test's own exit status is kept.
bh_on_exit() { BH_EXIT_HOOKS+=("$1"); }
bh_cleanup() {
    local status=$? pid log hook
    if [ "$status" != 0 ] && [ -n "${BH_LAST_ERR:-}" ]; then
        echo "FAIL: a command failed: $BH_LAST_ERR" >&2
    fi
    # A failed test shows what its servers complained about last.
    if [ "$status" != 0 ] && [ "$status" != 77 ]; then
        for log in "$BH_TMP"/server-*.log; do
            [ -e "$log" ] || continue
            grep -E '"level":"(warn|error)"' "$log" | tail -15 | sed "s|^|  $(basename "$log"): |" >&2 || true
        done
    fi
    for hook in "${BH_EXIT_HOOKS[@]:-}"; do
        [ -n "$hook" ] && { eval "$hook" || true; }
    done
    # Every process is stopped whatever the others do: under set -e, a
    # failing kill or wait must not end the loop early.
    for pid in "${BH_PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # The servers run under ASan/UBSan/LSan (the dev build) or TSan (the
    # tsan build): a report in any server's or worker's log, a leak found at
    # exit included, fails the test.
    local reports='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer'
    for log in "$BH_TMP"/server-*.log "$BH_TMP"/work-*.log; do
        [ -e "$log" ] || continue
        if grep -qE "$reports" "$log"; then
            echo "FAIL: sanitizer report in $(basename "$log"):" >&2
            grep -E -A25 "$reports" "$log" | head -60 >&2 || true
            status=1
        fi
    done
    # BH_KEEP_TMP=1 keeps a failed test's files (server logs, bodies) to read.
    if [ "$status" != 0 ] && [ -n "${BH_KEEP_TMP:-}" ]; then
        echo "kept $BH_TMP" >&2
    else
        rm -rf "$BH_TMP"
    fi
    exit "$status"
}
trap bh_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
skip() { echo "SKIP: $*"; exit 77; }

# A TCP port nobody listens on (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# bh_start [args...]: starts `bulkhead serve` (or the given command) on a free
# port; sets BH_PORT, BH_URL, BH_PID, BH_LOG. Extra environment may be set by
# the caller before calling.
bh_start() {
    BH_PORT=$(free_port)
    BH_URL="http://127.0.0.1:$BH_PORT"
    BH_LOG="$BH_TMP/server-$BH_PORT.log"
    BULKHEAD_HTTP_PORT=$BH_PORT "$BH_BIN" "${@:-serve}" >"$BH_LOG" 2>&1 &
    BH_PID=$!
    BH_PIDS+=("$BH_PID")
    local i
    for i in $(seq 1 100); do
        if curl -fsS -o /dev/null "$BH_URL/health/live" 2>/dev/null; then
            bh_warm_up
            return 0
        fi
        kill -0 "$BH_PID" 2>/dev/null || { tail -20 "$BH_LOG" >&2; fail "server exited at start"; }
        sleep 0.1
    done
    tail -20 "$BH_LOG" >&2
    fail "server did not start on port $BH_PORT"
}

# Under a slow build (ThreadSanitizer: scripts/test-tsan sets BH_WAIT_READY)
# opening each module's first Postgres connection can outlast the readiness
# probe's short budget: give the server a few probes to open them before the
# test starts. Best effort: a server meant to be unready stays so.
bh_warm_up() {
    [ -n "${BH_WAIT_READY:-}" ] || return 0
    local i
    for i in $(seq 1 25); do
        curl -fsS -o /dev/null --max-time 5 "$BH_URL/health/ready" 2>/dev/null && return 0
        sleep 0.2
    done
    return 0
}

# bh_stop [pid]: SIGTERM and wait; returns the process's exit status.
bh_stop() {
    local pid=${1:-$BH_PID} rc=0
    kill -TERM "$pid" 2>/dev/null || return 0
    wait "$pid" || rc=$?
    return $rc
}

# ops_curl ARGS...: curl with the ops token, for the operational routes
# (/metrics, /_modules, /_billing/sweep).
ops_curl() { curl -H "Authorization: Bearer $BULKHEAD_OPS_TOKEN" "$@"; }

# api METHOD PATH [JSON] [curl args...]: sets STATUS, BODY (text) and
# HEADERS (file). Uses $TOKEN as a bearer token when set, and the ops token
# on the operational routes (/metrics, /_*) unless NO_OPS_TOKEN=1.
api() {
    local method=$1 path=$2 data=${3:-}
    LAST_REQUEST="$method $path"
    shift 3 2>/dev/null || shift $#
    local args=(-sS -X "$method" -o "$BH_TMP/body" -D "$BH_TMP/headers" -w '%{http_code}')
    if [[ "$path" =~ ^/(metrics|_) ]] && [ "${NO_OPS_TOKEN:-}" != 1 ]; then
        args+=(-H "Authorization: Bearer $BULKHEAD_OPS_TOKEN")
    elif [ -n "${TOKEN:-}" ]; then
        args+=(-H "Authorization: Bearer $TOKEN")
    fi
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    # curl writes no body file for a response without one (304, HEAD):
    # never let the previous call's body stand in for it.
    : >"$BH_TMP/body"
    STATUS=$(curl "${args[@]}" "$@" "$BH_URL$path")
    BODY=$(cat "$BH_TMP/body")
    HEADERS="$BH_TMP/headers"
    contract_record "$method" "$path" "$STATUS" "$HEADERS" "$BH_TMP/body"
}

# contract_record METHOD PATH STATUS HEADERS_FILE BODY_FILE: with
# BH_CONTRACT_LOG set (a directory; ctest sets it for the e2e tests), appends
# the exchange as one JSON line; the contract test (tests/contract/validate.js)
# checks each against docs/openapi.yaml. `api` records every call; a test
# that runs curl itself records with this.
contract_record() {
    [ -n "${BH_CONTRACT_LOG:-}" ] || return 0
    local method=$1 path=$2 status=$3 headers=$4 body=$5 test=${0##*/}
    [ "$status" != 000 ] && [ -f "$headers" ] || return 0
    [ -f "$body" ] || body=/dev/null
    mkdir -p "$BH_CONTRACT_LOG"
    jq -cn --arg test "${test%.sh}" --arg method "$method" --arg path "$path" \
        --argjson status "$status" --rawfile headers "$headers" --rawfile body "$body" \
        '{test: $test, method: $method, path: $path, status: $status,
          headers: $headers, body: $body}' >>"$BH_CONTRACT_LOG/${test%.sh}.$$.jsonl"
}

# expect STATUS [what]: fails with the body when the last api call differs.
expect() {
    [ "$STATUS" = "$1" ] || fail "${2:-${LAST_REQUEST:-request}}: expected $1, got $STATUS: $BODY"
}

# header NAME: the value of a response header of the last api call.
header() {
    grep -i "^$1:" "$HEADERS" | head -1 | cut -d: -f2- | sed 's/^ //' | tr -d '\r'
}

# jget FILTER: jq over the last body.
jget() { jq -r "$1" <<<"$BODY"; }
