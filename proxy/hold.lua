-- While the api backend has no usable replica (a rollout replaces every
-- replica at once; all of them restarting), a request waits here, up to
-- 20 s, for one to come up instead of getting a 503 at once.
local LIMIT_MS = 20000
local STEP_MS = 100

core.register_action("hold_for_upstream", { "http-req" }, function(txn)
    local waited = 0
    while waited < LIMIT_MS and txn.f:nbsrv("api") == 0 do
        core.msleep(STEP_MS)
        waited = waited + STEP_MS
    end
end)
