-- Lua scripts run inside Redis (Lua 5.1): only the globals Redis provides.
std = "lua51"
globals = {}
read_globals = {"redis", "KEYS", "ARGV", "cjson", "cmsgpack", "bit", "struct"}
max_line_length = 100
