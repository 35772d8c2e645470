# Identity, sessions, organizations and roles. Everything else leans on it.
bh_module(NAME auth)
