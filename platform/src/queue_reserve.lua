-- Leases the oldest ready job.
-- KEYS ready leased; ARGV lease_ms. Returns the job's fields, or false.
-- include: queue_clock.lib.lua
-- include: queue_reserve.lib.lua
return reserve(KEYS[1], KEYS[2], ARGV[1]) or false
