# Helpers for the notifications tests (sourced after tests/lib/common.sh):
# waiting for what the workers do asynchronously, finding and reading the
# mail they send, and reading the live stream.
#
#   eventually SECONDS CMD...    retries CMD every 0.1 s until it succeeds
#   notif_count [QUERY] [JQ]     how many of $TOKEN's notifications match
#                                JQ (a select filter) on GET ?QUERY; the
#                                page is in $BODY (unless run in $(...))
#   notif_has N TYPE             true when $TOKEN has N or more of TYPE
#   mail_to EMAIL [DIR]          the .eml files addressed to EMAIL
#   has_mail EMAIL [DIR]         true once there is one
#   mail_part FILE TYPE          the decoded text/plain or text/html part
#   mail_header FILE NAME        a decoded header of a message
#   as_role ROLE SQL             psql as the login role, SET ROLE ROLE first
#   smtp_sink_start PORT DIR [ARGS]  starts tests/lib/smtp_sink.py (ARGS:
#                                --reject-rcpt S, --hang); sets SINK_PID
source "$BH_SOURCE_DIR/tests/lib/api.sh"

# The file transport writes here (every server of the run shares the dev
# environment's data directory, and any of them may run a given email job).
NOTIF_MAIL_DIR="${BULKHEAD_DATA_DIR:?}/mail"

eventually() {
    local seconds=$1
    shift
    local deadline=$(($(date +%s%N) + seconds * 1000000000))
    until "$@"; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

notif_count() {
    local query=${1:-limit=100} filter=${2:-.}
    api GET "/v1/me/notifications?$query"
    [ "$STATUS" = 200 ] || fail "list notifications: $STATUS $BODY"
    jq "[.data[] | $filter] | length" <<<"$BODY"
}

# notif_has N TYPE: true when $TOKEN has at least N notifications of TYPE.
notif_has() {
    [ "$(notif_count limit=100 "select(.type == \"$2\")")" -ge "$1" ]
}

# Messages are matched on their To header, so a body that quotes an
# address does not count.
mail_to() {
    local email=$1 dir=${2:-$NOTIF_MAIL_DIR} candidates
    [ -d "$dir" ] || return 0
    # grep narrows the shared directory down; the parser then checks the header.
    candidates=$(grep -l -i -F -e "$email" -r "$dir" --include='*.eml' 2>/dev/null || true)
    [ -n "$candidates" ] || return 0
    python3 - "$email" $candidates <<'EOF'
import email, email.policy, sys
want = sys.argv[1].lower()
for path in sorted(sys.argv[2:]):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    if any(a.addr_spec.lower() == want for a in msg["To"].addresses if msg["To"]):
        print(path)
EOF
}

# has_mail EMAIL: true once a message to EMAIL was written.
has_mail() { [ -n "$(mail_to "$@")" ]; }

mail_part() {
    python3 - "$1" "$2" <<'EOF'
import email, email.policy, sys
with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
part = msg.get_body(preferencelist=(sys.argv[2].split("/")[1],))
print(part.get_content() if part else "")
EOF
}

mail_header() {
    python3 - "$1" "$2" <<'EOF'
import email, email.policy, sys
with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
print(msg[sys.argv[2]] or "")
EOF
}

as_role() {
    psql "${DATABASE_URL:?}" -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE $1" -c "$2"
}

smtp_sink_start() {
    local port=$1 dir=$2
    shift 2
    python3 "$BH_SOURCE_DIR/tests/lib/smtp_sink.py" --port "$port" --dir "$dir" "$@" \
        >"$BH_TMP/sink-$port.out" 2>&1 &
    SINK_PID=$!
    BH_PIDS+=("$SINK_PID")
    eventually 5 grep -q ready "$BH_TMP/sink-$port.out" || fail "the SMTP sink did not start"
}
