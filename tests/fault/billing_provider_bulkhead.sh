#!/usr/bin/env bash
# The payment provider hangs while more plan changes wait on it than the
# server has HTTP threads: they run on billing's own handler pool
# (billing.provider), so the other routes keep answering at once instead of
# queueing behind them for the provider's time budget.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/e2e/billing_lib.bash"

# Two HTTP threads and six hanging calls; the breaker stays closed, so every
# call waits out its 1.5 s budget.
export BULKHEAD_HTTP_THREADS=2 BULKHEAD_BILLING_PROVIDER_THREADS=2
export BULKHEAD_BILLING_PROVIDER_TIMEOUT_MS=1500 BULKHEAD_BILLING_SIMULATOR_HANG_MS=3000
export BULKHEAD_BILLING_BREAKER_THRESHOLD=100
bh_start serve --no-workers

tokens=() orgs=()
for i in 1 2 3 4 5 6; do
    billing_owner "hang$i"
    billing_card tok_timeout
    tokens+=("$TOKEN") orgs+=("$ORG_ID")
done

pids=()
for i in 0 1 2 3 4 5; do
    curl -sS -o /dev/null -w '%{http_code}\n' -X PUT -H "Authorization: Bearer ${tokens[$i]}" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: hang-$i" \
        --data-binary '{"plan_id":"pro"}' "$BH_URL/v1/orgs/${orgs[$i]}/subscription" \
        >"$BH_TMP/put$i" &
    pids+=($!)
done
sleep 0.3 # the plan changes are on their way to the provider

slowest=0
for _ in $(seq 1 5); do
    t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' "$BH_URL/health/live")
    [ "${t%% *}" = 200 ] || fail "/health/live answered ${t%% *} while the provider hangs"
    ms=$(awk -v s="${t#* }" 'BEGIN { printf "%d\n", s * 1000 }')
    [ "$ms" -gt "$slowest" ] && slowest=$ms
done
wait "${pids[@]}"
# Each is 202 (it reached the provider, which did not answer in time: the
# outcome is unknown) or 503 (it waited longer than the budget for one of the
# pool's two threads).
for i in 0 1 2 3 4 5; do
    case "$(cat "$BH_TMP/put$i")" in
    202 | 503) ;;
    *) fail "plan change $i answered $(cat "$BH_TMP/put$i"), not 202 or 503" ;;
    esac
done
[ "$slowest" -lt 500 ] || fail "/health/live took $slowest ms behind the hanging provider calls"
pass "six plan changes hang on the provider (202 or 503 each); meanwhile /health/live answers within $slowest ms"
