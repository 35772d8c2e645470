#!/usr/bin/env bash
# Operational routes and secrets:
#  - /metrics, /_modules and /_billing/sweep need the ops token (401
#    ops_token_required without it, and the sweep changes nothing);
#    /health/* and /openapi.json stay open;
#  - every secret has a <NAME>_FILE variant; NAME and NAME_FILE together,
#    or a missing secret in production, stop the server at start;
#  - dev mode bound beyond loopback says so loudly;
#  - the binary carries no published secret, and scripts/devenv keeps the
#    per-install secrets in files only their owner can read.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
: "${BH_DEVENV_DIR:?}"

# ---- the ops token, given as a file
printf '%s\n' "$BULKHEAD_OPS_TOKEN" >"$BH_TMP/ops-token"
chmod 600 "$BH_TMP/ops-token"
(unset BULKHEAD_OPS_TOKEN; BULKHEAD_OPS_TOKEN_FILE=$BH_TMP/ops-token exec "$BH_BIN" routes >/dev/null) ||
    fail "bulkhead routes"
BULKHEAD_OPS_TOKEN= BULKHEAD_OPS_TOKEN_FILE=$BH_TMP/ops-token bh_start serve --no-workers
for path in /metrics /_modules; do
    NO_OPS_TOKEN=1 api GET "$path"
    expect 401 "GET $path without the ops token"
    [ "$(jget .code)" = ops_token_required ] && [ -n "$(header WWW-Authenticate)" ] ||
        fail "GET $path without the token: $BODY"
    NO_OPS_TOKEN=1 TOKEN=not-the-token api GET "$path"
    expect 401 "GET $path with a wrong token"
    api GET "$path"
    expect 200 "GET $path with the ops token (from BULKHEAD_OPS_TOKEN_FILE)"
done
NO_OPS_TOKEN=1 api POST /_billing/sweep '{}'
expect 401 "POST /_billing/sweep without the ops token"
for path in /health/live /health/ready /openapi.json; do
    NO_OPS_TOKEN=1 api GET "$path"
    [ "$STATUS" != 401 ] || fail "GET $path needs a token: $BODY"
done
pass "/metrics, /_modules and /_billing/sweep need the ops token (read from a _FILE); health and openapi are open"
bh_stop

# ---- start-up refusals
starts() { # ENV... -- runs `bulkhead serve` briefly; prints its log
    local log=$BH_TMP/start.log
    env "$@" BULKHEAD_HTTP_PORT="$(free_port)" timeout 20 "$BH_BIN" serve --no-workers >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    cat "$log"
}
out=$(starts BULKHEAD_ENV=prod BULKHEAD_OPS_TOKEN=)
grep -q 'BULKHEAD_OPS_TOKEN (or BULKHEAD_OPS_TOKEN_FILE) is required' <<<"$out" ||
    fail "prod without an ops token: $out"
out=$(starts BULKHEAD_ENV=prod BULKHEAD_BILLING_WEBHOOK_SECRET=)
grep -q 'BULKHEAD_BILLING_WEBHOOK_SECRET (or BULKHEAD_BILLING_WEBHOOK_SECRET_FILE) is required' <<<"$out" ||
    fail "prod without a webhook secret: $out"
out=$(starts BULKHEAD_ENV=prod BULKHEAD_JWT_SECRET=)
grep -q 'BULKHEAD_JWT_SECRET (or BULKHEAD_JWT_SECRET_FILE) is required' <<<"$out" ||
    fail "prod without a JWT secret: $out"
out=$(starts BULKHEAD_JWT_SECRET_FILE="$BH_TMP/ops-token")
grep -q 'both BULKHEAD_JWT_SECRET and BULKHEAD_JWT_SECRET_FILE are set' <<<"$out" ||
    fail "a secret and its _FILE both set: $out"
out=$(starts BULKHEAD_JWT_SECRET= BULKHEAD_JWT_SECRET_FILE="$BH_TMP/no-such-file")
grep -q 'BULKHEAD_JWT_SECRET_FILE: cannot read' <<<"$out" || fail "an unreadable _FILE: $out"
pass "prod without a secret, a secret set twice, or an unreadable _FILE: the server refuses to start"

out=$(starts BULKHEAD_HTTP_ADDR=192.0.2.1)
grep -q 'DEV MODE ON A NON-LOOPBACK ADDRESS (192.0.2.1)' <<<"$out" || fail "dev beyond loopback: $out"
pass "dev mode bound beyond loopback warns loudly"

# ---- no published secret; per-install secret files
if grep -aq 'whsec_bulkhead_dev_only\|dev-only-jwt-secret' "$BH_BIN"; then
    fail "the binary carries a published secret"
fi
for f in jwt-secret webhook-secret ops-token; do
    [ "$(stat -c %a "$BH_DEVENV_DIR/secrets/$f")" = 600 ] || fail "secrets/$f is not 0600"
done
[ "$(stat -c %a "$BH_DEVENV_DIR/secrets")" = 700 ] && [ "$(stat -c %a "$BH_DEVENV_DIR/env")" = 600 ] ||
    fail "secrets/ or env is readable by others"
[ "$(cat "$BH_DEVENV_DIR/secrets/ops-token")" = "$(sed -n 's/^export BULKHEAD_OPS_TOKEN=//p' "$BH_DEVENV_DIR/env")" ] ||
    fail "env does not export the ops token of secrets/"
pass "no published secret in the binary; devenv's secrets are 0600 files in a 0700 directory, exported by env"
