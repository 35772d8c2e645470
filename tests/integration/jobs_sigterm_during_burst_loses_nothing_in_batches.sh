# jobs_sigterm_during_burst_loses_nothing.sh with a coalesced consumer
# (batches of up to 4): at SIGTERM a worker finishes or hands back whole
# batches, the jobs of a failed-over batch go back in order, and no event is
# lost or has its effect twice.
export PROBE_BATCH=4
source "$BH_SOURCE_DIR/tests/integration/jobs_sigterm_during_burst_loses_nothing.sh"
largest=$(probe batches | sed -n 's/.*largest=\([0-9]*\).*/\1/p')
[ "${largest:-0}" -gt 1 ] || fail "no batch ran: $(probe batches)"
pass "the events were taken in batches (largest $largest)"
