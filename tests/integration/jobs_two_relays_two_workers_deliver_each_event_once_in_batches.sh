# jobs_two_relays_two_workers_deliver_each_event_once.sh with a coalesced
# consumer (batches of up to 32): two processes taking the 10,000 events in
# batches still handle each exactly once.
export PROBE_BATCH=32
source "$BH_SOURCE_DIR/tests/integration/jobs_two_relays_two_workers_deliver_each_event_once.sh"
largest=$(probe batches | sed -n 's/.*largest=\([0-9]*\).*/\1/p')
[ "${largest:-0}" -gt 1 ] || fail "no batch ran: $(probe batches)"
pass "the events were taken in batches (largest $largest)"
