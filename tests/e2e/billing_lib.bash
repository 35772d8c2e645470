# Helpers for the billing tests (sourced after tests/lib/common.sh), built on
# tests/lib/api.sh. Every test makes its own users and organizations.
source "$BH_SOURCE_DIR/tests/lib/api.sh"

# The webhook secret the test servers use (exported before bh_start).
export BULKHEAD_BILLING_WEBHOOK_SECRET=${BULKHEAD_BILLING_WEBHOOK_SECRET:-whsec_test_0123456789abcdef}

# billing_owner LABEL: signs up a fresh owner; sets TOKEN, ORG_ID, USER_ID, EMAIL.
billing_owner() { new_user "billing-$1" >/dev/null; }

# billing_card TOKEN_NAME [ORG]: stores a simulator card for ORG ($ORG_ID).
billing_card() {
    api POST "/v1/orgs/${2:-$ORG_ID}/payment-method" "{\"token\":\"$1\"}"
    expect 200 "store card $1"
}

# billing_put PLAN KEY [ORG]: PUT the subscription with an Idempotency-Key.
billing_put() {
    api PUT "/v1/orgs/${3:-$ORG_ID}/subscription" "{\"plan_id\":\"$1\"}" -H "Idempotency-Key: $2"
}

# billing_cancel KEY [ORG]
billing_cancel() {
    api DELETE "/v1/orgs/${2:-$ORG_ID}/subscription" "" -H "Idempotency-Key: $1"
}

# billing_sub [ORG]: GET the subscription (expects 200).
billing_sub() {
    api GET "/v1/orgs/${1:-$ORG_ID}/subscription"
    expect 200 "get subscription"
}

# billing_invoices [ORG]: GET the invoice list (expects 200).
billing_invoices() {
    api GET "/v1/orgs/${1:-$ORG_ID}/invoices?limit=100"
    expect 200 "list invoices"
}

# billing_sql SQL: one value from Postgres as the superuser (read-only checks).
billing_sql() { psql "${BH_PG_ADMIN_URL:?}" -qAtX -c "$1"; }

# billing_sign BODY T [SECRET]: the Billing-Signature header value.
billing_sign() {
    local sig
    sig=$(printf '%s.%s' "$2" "$1" |
        openssl dgst -sha256 -hmac "${3:-$BULKHEAD_BILLING_WEBHOOK_SECRET}" | awk '{print $NF}')
    printf 't=%s,v1=%s' "$2" "$sig"
}

# billing_webhook BODY [T] [SECRET]: POSTs a signed simulator event.
billing_webhook() {
    local t=${2:-$(date +%s)}
    api POST /v1/billing/webhooks/simulator "$1" -H "Billing-Signature: $(billing_sign "$1" "$t" "${3:-}")"
}

# billing_wait_for CMD...: retries CMD (quietly) for up to 30 s: work
# that goes through the job queue may wait out a retry's backoff on a
# loaded machine.
billing_wait_for() {
    local deadline=$(($(date +%s) + 30))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# billing_finish: stops the server and fails on a non-zero exit or any
# sanitizer report in its log (leaks included).
billing_finish() {
    local rc=0
    bh_stop "$BH_PID" || rc=$?
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$BH_LOG"; then
        grep -E -A20 'AddressSanitizer|LeakSanitizer|runtime error' "$BH_LOG" | head -60 >&2 || true
        fail "sanitizer report in the server log"
    fi
    [ "$rc" = 0 ] || fail "the server exited with status $rc"
    pass "the server stopped cleanly, no sanitizer reports"
}
