# Helpers for the tasks tests (sourced after common.sh): people and orgs to
# work with, each test making its own so tests never share state.

# tasks_signup LABEL: signs up a fresh user (with a personal org) and prints
# "ACCESS_TOKEN ORG_ID USER_ID EMAIL".
tasks_signup() {
  local email="tasks-$1-$(date +%s%N)-$RANDOM@example.com"
  TOKEN= api POST /v1/auth/signup \
    "{\"email\":\"$email\",\"password\":\"correct horse battery staple\",\"name\":\"$1\"}"
  expect 201 "signup $1"
  echo "$(jget .access_token) $(jget .org.id) $(jget .user.id) $email"
}

# tasks_add_member ORG EMAIL ROLE: adds an existing user to ORG ($TOKEN is an
# admin or owner of ORG).
tasks_add_member() {
  api POST "/v1/orgs/$1/members" "{\"email\":\"$2\",\"role\":\"$3\"}"
  [ "$STATUS" = 201 ] || [ "$STATUS" = 200 ] || fail "add member $2 to $1: $STATUS $BODY"
}

# tasks_metric NAME_AND_LABELS: the value of one line of /metrics (0 if absent).
tasks_metric() {
  curl -fsS "$BH_URL/metrics" | awk -v m="$1" '$1 == m {print $2; found=1} END {if (!found) print 0}'
}
