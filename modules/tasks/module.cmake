# Projects, tasks and comments, with cache-aside reads.
bh_module(NAME tasks DEPENDS auth billing)
