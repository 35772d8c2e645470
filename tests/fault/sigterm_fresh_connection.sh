#!/usr/bin/env bash
# SIGTERM with connections accepted but not yet asked anything: a client
# whose request is still on its way when the signal lands gets its answer,
# not a reset. The drain waits for such connections (up to half a second)
# as it waits for requests in flight.
source "$(dirname "$0")/../lib/common.sh"
bh_start serve --no-workers

n=4
# Each client connects, waits for the go file (written after SIGTERM), then
# sends its request and prints the status line it gets back.
for i in $(seq 1 $n); do
    python3 - "$BH_PORT" "$BH_TMP/go" >"$BH_TMP/fresh.$i" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
deadline = time.time() + 10
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.005)
s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print("error:", e)
print(data.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer")
PY
    pids[$i]=$!
done
# Signal only once the server has accepted every connection (-p names the
# owning process only then).
for _ in $(seq 1 200); do
    est=$(ss -Htnp state established "( sport = :$BH_PORT )" | grep -c "pid=$BH_PID," || true)
    [ "$est" -ge "$n" ] && break
    sleep 0.02
done
[ "$est" -ge "$n" ] || fail "the server accepted $est of $n connections"
kill -TERM "$BH_PID"
sleep 0.1
touch "$BH_TMP/go"
for i in $(seq 1 $n); do
    wait "${pids[$i]}" || true
    grep -q '^HTTP/1.1 200' "$BH_TMP/fresh.$i" ||
        fail "client $i, accepted before SIGTERM, got: $(cat "$BH_TMP/fresh.$i")"
done
pass "$n connections accepted before SIGTERM, asked after it, all got 200"

rc=0; wait "$BH_PID" || rc=$?
[ $rc = 0 ] || fail "server exited $rc after SIGTERM"
pass "the server drained and exited 0"
