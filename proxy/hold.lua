-- While the api replicas are being replaced (a rollout recreates every one
-- at once; all of them restarting), a request waits here for one to come up,
-- up to 30 s, instead of getting a 503 at once. "Being replaced": no api
-- replica resolves in DNS, or one of them has announced that it is stopping
-- (its drain marker, see ./check). Replicas that run but fail their check
-- (Postgres down) are an outage, not a rollout: no waiting then.
local LIMIT_MS = 30000
local STEP_MS = 100
local DRAIN_DIR = "/run/bulkhead-drain/"

local function being_replaced()
    local backend = core.backends["api"]
    if backend == nil then
        return false
    end
    local resolved = false
    for _, srv in pairs(backend.servers) do
        local ok, addr = pcall(srv.get_addr, srv)
        local ip = ok and type(addr) == "string" and addr:match("^(.+):%d+$") or nil
        if ip ~= nil and ip ~= "0.0.0.0" and ip ~= "::" then
            resolved = true
            local marker = io.open(DRAIN_DIR .. ip, "r")
            if marker ~= nil then
                marker:close()
                return true
            end
        end
    end
    return not resolved
end

core.register_action("hold_for_upstream", { "http-req" }, function(txn)
    local waited = 0
    while waited < LIMIT_MS and txn.f:nbsrv("api") == 0 and being_replaced() do
        core.msleep(STEP_MS)
        waited = waited + STEP_MS
    end
end)
