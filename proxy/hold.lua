-- While the api replicas are being replaced (a rollout recreates every one
-- at once; all of them restarting), a request waits here for one to come up,
-- up to 30 s, instead of getting a 503 at once. "Being replaced": no api
-- replica resolves in DNS, or one of them has announced that it is stopping
-- or still starting (its marker <address> or <address>.starting, written by
-- the image's entrypoint), or its last check found it stopping or not
-- answering at all (./check exits 2 or 3: a killed replica). Replicas that
-- answer but are not ready (Postgres down) are an outage, not a rollout: the
-- 503 comes at once then.
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
            local okstats, stats = pcall(srv.get_stats, srv)
            local code = okstats and stats and tonumber(stats["check_code"]) or nil
            if code == 2 or code == 3 then
                return true
            end
            for _, name in ipairs({ ip, ip .. ".starting" }) do
                local marker = io.open(DRAIN_DIR .. name, "r")
                if marker ~= nil then
                    marker:close()
                    return true
                end
            end
        end
    end
    return not resolved
end

-- A replica DNS lists again counts as up before its first check: while its
-- <address>.starting (or drain) marker is there, its check is forced down so
-- that it gets no request before it is ready. Run every 100 ms, and by every
-- request that waits.
local function force_down_marked()
    local backend = core.backends["api"]
    if backend == nil then
        return
    end
    for _, srv in pairs(backend.servers) do
        local ok, addr = pcall(srv.get_addr, srv)
        local ip = ok and type(addr) == "string" and addr:match("^(.+):%d+$") or nil
        if ip ~= nil and ip ~= "0.0.0.0" and ip ~= "::" then
            for _, name in ipairs({ ip, ip .. ".starting" }) do
                local marker = io.open(DRAIN_DIR .. name, "r")
                if marker ~= nil then
                    marker:close()
                    local okstats, stats = pcall(srv.get_stats, srv)
                    if okstats and stats and tostring(stats["status"]):match("^UP") then
                        pcall(srv.check_force_down, srv)
                    end
                    break
                end
            end
        end
    end
end

core.register_task(function()
    while true do
        force_down_marked()
        core.msleep(STEP_MS)
    end
end)

core.register_action("hold_for_upstream", { "http-req" }, function(txn)
    local waited = 0
    force_down_marked()
    while waited < LIMIT_MS and txn.f:nbsrv("api") == 0 and being_replaced() do
        core.msleep(STEP_MS)
        waited = waited + STEP_MS
        force_down_marked()
    end
end)
