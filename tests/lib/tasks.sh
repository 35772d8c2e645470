# Helpers for the tasks tests (sourced after common.sh), built on api.sh:
# people and orgs to work with, each test making its own so tests never
# share state.
source "$BH_SOURCE_DIR/tests/lib/api.sh"

# tasks_signup LABEL: signs up a fresh user (with a personal org) and prints
# "ACCESS_TOKEN ORG_ID USER_ID EMAIL". Run it in $(...): it sets TOKEN.
tasks_signup() {
  new_user "tasks-$1" >/dev/null
  echo "$TOKEN $ORG_ID $USER_ID $EMAIL"
}

# tasks_add_member ORG EMAIL ROLE: adds an existing user to ORG ($TOKEN is an
# admin or owner of ORG).
tasks_add_member() { add_member "$@"; }

# tasks_metric NAME_AND_LABELS: the value of one line of /metrics (0 if absent).
tasks_metric() {
  ops_curl -fsS "$BH_URL/metrics" | awk -v m="$1" '$1 == m {print $2; found=1} END {if (!found) print 0}'
}

# tasks_events AGGREGATE_ID: the events published for it, one JSON object
# {type, actor_id, org_id, data} per line, in outbox order.
tasks_events() {
  psql "${BH_PG_ADMIN_URL:?}" -qAtX -c "SELECT json_build_object('type', payload->'type',
      'actor_id', payload->'actor_id', 'org_id', payload->'org_id', 'data', payload->'data')
    FROM platform.outbox WHERE aggregate_id = '$1' ORDER BY seq"
}
