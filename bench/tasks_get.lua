-- wrk script: GET one task as an authenticated member (bench/tasks).
-- BENCH_TOKEN is the access token; the URL names the task.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
