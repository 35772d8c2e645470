/* Postgres access: one connection pool per module (a bulkhead: exhausting
 * one module's pool cannot starve another), each connection logged in as the
 * application role and switched to the module's role (`SET ROLE bh_<m>`),
 * with a statement timeout and a bounded wait for a free connection.
 *
 * Inside a module, use the short forms (bh_tx_begin(&tx), bh_db_query(...)):
 * they name the calling module's pool from BH_MODULE_NAME, so a module cannot
 * accidentally use another module's role. The `_as` forms they expand to
 * (bh_tx_begin_as("tasks", &tx)) name the module explicitly, for the
 * composition root and tests, which belong to no module. SQL is always
 * parameterized: params are text, NULL for SQL NULL.
 *
 * A transaction handle can cross into another module: the callee calls
 * bh_tx_enter() (SET LOCAL ROLE to its own role) and bh_tx_leave() when done,
 * so both modules' writes commit or roll back together while each statement
 * still runs with only its own module's privileges. */
#ifndef BH_PLATFORM_DB_H
#define BH_PLATFORM_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

struct bh_tx;

/* Opens the pools (lazily connected) for these modules plus "platform".
 * Returns 0 or BH_EINVAL. */
int bh_db_init(const char *database_url, const char *const *modules, int n_modules, int pool_size,
               int wait_ms, int statement_timeout_ms);
void bh_db_shutdown(void);

/* Starts a transaction on a connection from module's pool. On success *out
 * owns the connection until bh_tx_commit() or bh_tx_rollback(). BEGIN is
 * sent in one pipeline with the first statement (a round trip saved).
 * BH_EUNAVAILABLE when the pool stays empty past the wait budget or
 * Postgres is unreachable. */
int bh_tx_begin_as(const char *module, struct bh_tx **out);
/* Commits and releases; the handle is freed whatever the result. */
int bh_tx_commit(struct bh_tx *tx);
/* Rolls back and releases; NULL is allowed (so cleanup paths stay simple). */
void bh_tx_rollback(struct bh_tx *tx);

/* Runs one parameterized statement. On success *res (may be NULL to discard)
 * is a PGresult the caller frees with PQclear(). Statements are prepared once
 * per connection, keyed by the address of sql: pass string literals.
 * Errors: BH_ECONFLICT (unique or exclusion violation), BH_EINVAL (check,
 * foreign key, not-null, invalid text), BH_ETIMEOUT (statement timeout),
 * BH_EUNAVAILABLE (connection lost), BH_EINTERNAL (anything else, logged). */
int bh_tx_query(struct bh_tx *tx, PGresult **res, const char *sql, int nparams,
                const char *const *params);
/* Holds a statement back whose result the caller does not read (an outbox
 * row): it is sent in one pipeline with the transaction's next statement or
 * with its COMMIT, under the role in effect now, which saves a round trip
 * while row locks are held. Its failure aborts the transaction like any
 * other and is reported by that next bh_tx_query() or bh_tx_commit(): so
 * defer only statements whose failure the caller would not handle itself.
 * params are copied. Returns 0, or BH_ENOMEM (the statement is not queued). */
int bh_tx_defer(struct bh_tx *tx, const char *sql, int nparams, const char *const *params);
/* The SQLSTATE and constraint name of the last failed statement ("" if none). */
const char *bh_tx_sqlstate(const struct bh_tx *tx);
const char *bh_tx_constraint(const struct bh_tx *tx);

/* Switches the transaction to module's role for the statements that follow
 * (SET LOCAL ROLE, sent in one pipeline with the next statement). Returns
 * the previous module name in *prev for leave. */
int bh_tx_enter_as(struct bh_tx *tx, const char *module, const char **prev);
int bh_tx_leave(struct bh_tx *tx, const char *prev);
/* The module whose role the transaction is using now. */
const char *bh_tx_module(const struct bh_tx *tx);

/* One statement in its own transaction on module's pool. */
int bh_db_query_as(const char *module, PGresult **res, const char *sql, int nparams,
                   const char *const *params);

/* Health: SELECT 1 on one connection of module's pool within timeout_ms. */
int bh_db_ping(const char *module, int timeout_ms);

/* Pool figures for /metrics. */
struct bh_db_pool_stats {
    int size, open, in_use, waiting;
    unsigned long long timeouts;
};
int bh_db_pool_stats(const char *module, struct bh_db_pool_stats *out);

/* Applies migrations_dir/<name>/NNNN_*.sql for platform then each module, in
 * order (each file once, in its own transaction, under its module's role),
 * recorded with a SHA-256 checksum in platform.schema_migrations. Refuses an
 * applied migration whose file changed. Serialised by an advisory lock, so
 * concurrent runs are safe. Returns 0 or a negative bh_err (logged). */
int bh_db_migrate(const char *database_url, const char *migrations_dir, const char *const *modules,
                  int n_modules);

/* Helpers for reading results: the value at (row, col), "" for NULL. */
static inline const char *bh_pg_str(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col);
}
static inline bool bh_pg_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) != 0;
}

#ifdef BH_MODULE_NAME
#define bh_tx_begin(out)            bh_tx_begin_as(BH_MODULE_NAME, (out))
#define bh_tx_enter(tx, prev)       bh_tx_enter_as((tx), BH_MODULE_NAME, (prev))
#define bh_db_query(res, sql, n, p) bh_db_query_as(BH_MODULE_NAME, (res), (sql), (n), (p))
#endif

#endif
