-- wrk script: POST a new task as an authenticated member (bench/tasks).
-- BENCH_TOKEN is the access token; the URL is the org's task collection.
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Benchmark task","description":"Created by bench/tasks","priority":"high"}'
