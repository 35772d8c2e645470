/* The one way the platform opens a Postgres connection: the module pools
 * (db_pool.c), the migration runner (migrate.c) and the relay's LISTEN
 * connection (relay.c) all connect here, under one timeout rule. Private to
 * platform/src. It must never block past its budget, whatever the URL says. */
#ifndef BH__PLATFORM_SRC_PG_H
#define BH__PLATFORM_SRC_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

enum { BH__PG_CONNECT_TIMEOUT_S = 2 }; /* when the URL names no connect_timeout */

/* The connect budget for url, in ms: its connect_timeout when that is a
 * positive number of seconds (up to an hour), else BH__PG_CONNECT_TIMEOUT_S.
 * 0 with *out_ms set, or BH_EINVAL when url does not parse (the reason in
 * why). */
int bh__pg_connect_budget_ms(const char *url, int *out_ms, char *why, size_t why_size);

/* Connects to url as application "bulkhead:<who>", giving up at the
 * earlier of deadline_ms (INT64_MAX: none) and now + the connect budget.
 * Server notices go to the log, tagged with who, which must outlive the
 * connection. Returns the connection (the caller PQfinish()es it), or NULL
 * with the reason in why. */
PGconn *bh__pg_connect(const char *url, const char *who, int64_t deadline_ms, char *why,
                       size_t why_size);

/* The length of a libpq message's first line, trailing spaces cut: a log
 * entry is one line, and libpq messages may span several. */
int bh__pg_msg_len(const char *msg);

#endif
