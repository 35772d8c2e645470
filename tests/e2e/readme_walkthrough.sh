#!/usr/bin/env bash
# The README's "Drive it with curl" section runs as written: every shell
# block of it, in order, against a fresh server, with only the address and
# the ops token's file put in place of `make run`'s. A command that fails, a
# jq that finds no JSON, or a 5xx anywhere fails the test, so the README
# cannot drift from the API.
source "$BH_SOURCE_DIR/tests/lib/common.sh"

bh_start serve

# `make run` keeps the ops token in .run/secrets/ops-token.
mkdir -p "$BH_TMP/run/.run/secrets"
printf '%s' "$BULKHEAD_OPS_TOKEN" >"$BH_TMP/run/.run/secrets/ops-token"

python3 - "$BH_SOURCE_DIR/README.md" "127.0.0.1:$BH_PORT" >"$BH_TMP/walkthrough.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^## Drive it with curl\n(.*?)(?=^## )", text, re.S | re.M)
if not section:
    sys.exit("README.md has no 'Drive it with curl' section")
blocks = re.findall(r"```sh\n(.*?)```", section.group(1), re.S)
if not blocks:
    sys.exit("the walkthrough has no sh blocks")
print("set -euo pipefail")
print("\n".join(b.replace("localhost:8080", sys.argv[2]) for b in blocks))
PY
grep -q 'localhost:8080' "$BH_TMP/walkthrough.sh" && fail "an address was left unreplaced"
[ "$(grep -c curl "$BH_TMP/walkthrough.sh")" -ge 15 ] || fail "the walkthrough lost its curls"

# The welcome note reaches the inbox through the outbox, the relay and a
# worker: give the walkthrough the time a reader's typing would.
(cd "$BH_TMP/run" && bash "$BH_TMP/walkthrough.sh") >"$BH_TMP/out" 2>"$BH_TMP/err" || {
    cat "$BH_TMP/out" "$BH_TMP/err" >&2
    fail "the README walkthrough stopped"
}
if grep -qE '"status": *5[0-9][0-9]' "$BH_TMP/out"; then
    cat "$BH_TMP/out" >&2
    fail "the walkthrough saw a 5xx"
fi
grep -qi '^x-cache: hit' "$BH_TMP/out" || fail "the second read was not a cache hit"
grep -qi '^idempotent-replayed' "$BH_TMP/out" || fail "the repeated upgrade was not a replay"
grep -q '^bulkhead_http_requests_total' "$BH_TMP/out" || fail "the metrics call showed no counter"
pass "the README's curl walkthrough runs as written"
