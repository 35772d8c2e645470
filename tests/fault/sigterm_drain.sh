#!/usr/bin/env bash
# SIGTERM under load: the server stops accepting connections, lets the
# requests already in flight finish with complete responses, and exits 0.
# Logins are the slow requests here (Argon2id takes ~0.1 s), so several are
# certainly in flight when the signal lands.
source "$(dirname "$0")/../lib/common.sh"
bh_start serve --no-workers

n=6
for i in $(seq 1 $n); do
    curl -sS -o "$BH_TMP/login.$i" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "{\"email\":\"nobody$i@example.com\",\"password\":\"not-the-password-$i\"}" \
        "$BH_URL/v1/auth/login" >"$BH_TMP/status.$i" 2>"$BH_TMP/err.$i" &
    pids[$i]=$!
done
# Signal only once every login is on an accepted connection: a connection
# still in the kernel's backlog when the listener closes is refused, which
# says nothing about draining. On a loaded machine that can take a while.
for _ in $(seq 1 200); do
    # -p names the owning process only once the server has accepted it
    est=$(ss -Htnp state established "( sport = :$BH_PORT )" | grep -c "pid=$BH_PID," || true)
    [ "$est" -ge "$n" ] && break
    sleep 0.02
done
sleep 0.05
kill -TERM "$BH_PID"
for i in $(seq 1 $n); do
    wait "${pids[$i]}" || fail "login $i was cut off: $(cat "$BH_TMP/err.$i")"
    status=$(cat "$BH_TMP/status.$i")
    case $status in
        401|429|503) ;;
        *) fail "login $i got $status: $(cat "$BH_TMP/login.$i")" ;;
    esac
    jq -e .code "$BH_TMP/login.$i" >/dev/null || fail "login $i got a partial body"
done
pass "$n logins in flight at SIGTERM all got complete answers"

rc=0; wait "$BH_PID" || rc=$?
[ $rc = 0 ] || fail "server exited $rc after SIGTERM"
grep -q '"SIGTERM received: draining"' "$BH_LOG" || fail "no drain log line"
curl -s -o /dev/null "$BH_URL/health/live" && fail "server still answers after draining"
pass "the server drained, exited 0 and no longer accepts connections"
