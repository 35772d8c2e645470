#!/usr/bin/env bash
# The HTTP edge answers every malformed request with a problem+json 4xx
# before any module runs: unknown routes and methods, oversized bodies,
# wrong content types, malformed or too deeply nested JSON, unknown fields.
# It echoes or generates X-Request-Id and serves health, metrics and OpenAPI.
source "$(dirname "$0")/../lib/common.sh"
bh_start serve --no-workers

is_problem() { # status code
    expect "$1"
    [ "$(header Content-Type)" = "application/problem+json" ] || fail "not problem+json: $(header Content-Type)"
    [ "$(jget .status)" = "$1" ] || fail "problem status differs: $BODY"
    [ "$(jget .code)" = "$2" ] || fail "expected code $2: $BODY"
    [ -n "$(jget .request_id)" ] && [ "$(jget .request_id)" != null ] || fail "no request_id: $BODY"
    [ "$(jget .request_id)" = "$(header X-Request-Id)" ] || fail "request_id differs from X-Request-Id"
}

api GET /health/live
expect 200; [ "$(jget .status)" = ok ] || fail "live body: $BODY"
pass "GET /health/live is 200"

api GET /health/ready
expect 200; [ "$(jget .checks.postgres.auth)" = up ] && [ "$(jget .checks.redis.tasks)" = up ] || fail "ready: $BODY"
pass "GET /health/ready is 200 with every dependency up"

api GET /no/such/route
is_problem 404 not_found
pass "unknown route: 404 problem"

api DELETE /health/live
is_problem 405 method_not_allowed
[ "$(header Allow)" = "GET, HEAD" ] || fail "Allow: $(header Allow)"
pass "wrong method: 405 problem with Allow"

api GET /health/live "" -H "X-Request-Id: trace-me-42"
[ "$(header X-Request-Id)" = trace-me-42 ] || fail "X-Request-Id not echoed"
api GET /health/live "" -H "X-Request-Id: bad id with spaces"
[ "$(header X-Request-Id)" != "bad id with spaces" ] && [ -n "$(header X-Request-Id)" ] || fail "bad X-Request-Id kept"
pass "X-Request-Id is echoed when sane and generated otherwise"

route=/v1/auth/signup # a JSON POST route every build has
api POST $route '{"email": "x@example.com"' 
is_problem 400 malformed_json
pass "malformed JSON: 400 problem"

api POST $route '[1, 2, 3]'
is_problem 400 malformed_json
pass "a JSON body that is not an object: 400 problem"

deep=$(printf '%.0s[' $(seq 1 40))1$(printf '%.0s]' $(seq 1 40))
api POST $route "{\"a\": $deep}"
is_problem 400 json_too_deep
pass "JSON nested 40 deep: 400 problem"

api POST $route '{"email": "a@b.co", "email": "c@d.co"}'
is_problem 400 malformed_json
pass "duplicate keys: 400 problem"

STATUS=$(curl -sS -o "$BH_TMP/body" -D "$BH_TMP/headers" -w '%{http_code}' -X POST \
    -H 'Content-Type: text/plain' --data 'hello' "$BH_URL$route")
BODY=$(cat "$BH_TMP/body"); HEADERS=$BH_TMP/headers
is_problem 415 unsupported_media_type
pass "text/plain body: 415 problem"

STATUS=$(curl -sS -o "$BH_TMP/body" -D "$BH_TMP/headers" -w '%{http_code}' -X POST \
    -H 'Content-Type: text/plain' --data 'hello' "$BH_URL/v1/no-such-route")
BODY=$(cat "$BH_TMP/body"); HEADERS=$BH_TMP/headers
is_problem 404 not_found
pass "text/plain body to no route: 404, not 415"

head -c 70000 /dev/zero | tr '\0' 'a' >"$BH_TMP/big"
STATUS=$(curl -sS -o "$BH_TMP/body" -D "$BH_TMP/headers" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary @"$BH_TMP/big" "$BH_URL$route")
BODY=$(cat "$BH_TMP/body"); HEADERS=$BH_TMP/headers
is_problem 413 body_too_large
pass "a 70 kB body: 413 problem"

STATUS=$(head -c 70000 /dev/zero | tr '\0' 'a' | curl -sS -o "$BH_TMP/body" -D "$BH_TMP/headers" \
    -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
    --data-binary @- "$BH_URL$route")
BODY=$(cat "$BH_TMP/body"); HEADERS=$BH_TMP/headers
is_problem 413 body_too_large
pass "a 70 kB chunked body: 413 problem"

api POST $route '{"email": 5, "password": true, "name": null, "surprise": 1}'
[ "${STATUS:0:1}" = 4 ] || fail "wrong types: expected 4xx, got $STATUS: $BODY"
[ "$(header Content-Type)" = "application/problem+json" ] || fail "wrong types: not a problem"
jq -e '.errors | map(.field) | index("surprise")' <<<"$BODY" >/dev/null || fail "unknown field not reported: $BODY"
pass "wrong types and unknown fields: 4xx problem listing the fields"

api GET /metrics
expect 200
grep -q 'bulkhead_http_requests_total{module="platform",method="GET",route="/health/live",status="200"}' <<<"$BODY" ||
    fail "metrics lack the request counter"
grep -q 'bulkhead_http_request_duration_seconds_bucket' <<<"$BODY" || fail "metrics lack latency histograms"
grep -q 'bulkhead_db_pool_connections{module="auth",state="size"}' <<<"$BODY" || fail "metrics lack pool usage"
pass "GET /metrics has requests by route, module and status, latency histograms and pool usage"

api GET /openapi.json
expect 200
[ "$(jget .openapi)" = 3.1.0 ] || fail "openapi.json: $(head -c 200 <<<"$BODY")"
pass "GET /openapi.json serves the OpenAPI 3.1 description"

# Read whole before matching: grep -q stops early, and a writer cut off
# mid-output would fail the pipeline.
routes=$("$BH_BIN" routes) modules=$("$BH_BIN" modules)
grep -qE '^GET +/health/ready +platform$' <<<"$routes" || fail "bulkhead routes lacks /health/ready"
grep -q 'graph TD' <<<"$modules" || fail "bulkhead modules prints no Mermaid graph"
pass "bulkhead routes and bulkhead modules describe the binary"

bh_stop || fail "server exited non-zero on SIGTERM"
pass "SIGTERM stops the server cleanly"
