/* What the files of the Postgres layer share (db.c transactions,
 * db_pool.c pools and connections, db_statements.c prepared statements and
 * pipelines, db_errors.c SQLSTATE mapping). Private to platform/src: modules
 * see only platform/db.h. */
#ifndef BH__PLATFORM_SRC_DB_INTERNAL_H
#define BH__PLATFORM_SRC_DB_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    DB_NAME_MAX = 32, /* module names are [a-z_]{1,31} */
    STMT_SLOTS_LOG2 = 6,
    STMT_SLOTS = 1 << STMT_SLOTS_LOG2,    /* prepared statements per connection */
    STMT_MAX_CACHED = STMT_SLOTS * 3 / 4, /* keep probe chains short */
    SQLSTATE_LEN = 5,
    CONSTRAINT_MAX = 64, /* NAMEDATALEN */
    DEFER_MAX = 8,       /* statements bh_tx_defer() holds back */
    DEFER_MAX_PARAMS = 16,
    /* BEGIN, each deferred statement with a role switch, then the role
     * switch and the statement that carries them. */
    PIPELINE_MAX = 1 + 2 * DEFER_MAX + 2,
};

/* A prepared statement, keyed by the address of its SQL text. The text is
 * kept too, so a reused address (heap SQL, against the rules) is noticed
 * instead of running the wrong statement. */
struct db_stmt {
    const char *key; /* NULL: free slot */
    char *text;
    unsigned id; /* server-side name "s<id>" */
};

struct db_pool;

struct db_conn {
    struct db_pool *pool;
    PGconn *pg; /* NULL until first used, and after it was closed */
    bool in_use;
    bool broken; /* close instead of returning to the pool */
    int n_stmts;
    unsigned next_stmt_id;
    struct db_stmt stmts[STMT_SLOTS];
};

struct db_pool {
    char name[DB_NAME_MAX];
    pthread_mutex_t lock;     /* guards everything below, and conns[].in_use */
    pthread_cond_t available; /* signalled when a connection is released */
    struct db_conn *conns;
    int size, open, in_use, waiting;
    unsigned long long timeouts;
    int64_t last_connect_failure_ms; /* 0 when the last connect worked */
};

/* One statement of a pipeline. Literal SQL (cacheable) is prepared once per
 * connection like conn_run() does; control statements (BEGIN, SET LOCAL
 * ROLE, COMMIT) are sent as they are. */
struct db_step {
    const char *sql;
    int nparams;
    const char *const *params;
    bool cacheable;
};

/* ---- db_statements.c: statements on one connection ---- */
/* Runs sql on c: prepared once and then reused, or unprepared when the
 * cache is full. Returns what libpq returns (NULL only when out of memory). */
PGresult *bh__db_conn_run(struct db_conn *c, const char *sql, int nparams,
                          const char *const *params);
/* Runs steps[0..n) in one pipeline: one round trip. Returns the first error
 * among them, or the last step's result; like bh__db_conn_run(), never NULL
 * but on OOM. What follows an error is aborted by the server, not run. */
PGresult *bh__db_conn_run_steps(struct db_conn *c, const struct db_step *steps, int n);
/* Forgets c's prepared statements (its session is gone). */
void bh__db_stmt_cache_clear(struct db_conn *c);

/* ---- db_pool.c: the pools ---- */
/* Waits for a free connection up to the configured budget (bh_db_init). */
enum { DB_WAIT_CONFIGURED = -1 };
/* module's pool, or NULL (logged: a module without a pool is a wiring bug). */
struct db_pool *bh__db_pool_find(const char *module);
/* Takes a connection from pool, waiting at most wait_ms (or
 * DB_WAIT_CONFIGURED) for a free one, and makes sure it is open (connecting
 * by connect_deadline_ms at the latest). 0 or BH_EUNAVAILABLE. */
int bh__db_pool_acquire(struct db_pool *pool, int wait_ms, int64_t connect_deadline_ms,
                        struct db_conn **out);
/* Gives c back; closes it when it is broken or still inside a transaction. */
void bh__db_pool_release(struct db_pool *pool, struct db_conn *c);

/* ---- db_errors.c: what a failed statement means ---- */
/* Maps a failed result (NULL when libpq ran out of memory) to a bh_err,
 * copies its SQLSTATE (SQLSTATE_LEN + 1 bytes) and constraint name
 * (CONSTRAINT_MAX bytes) out, and marks c broken when it is. Logs, tagged
 * with module, what callers cannot fix; never the parameters. */
int bh__db_result_error(struct db_conn *c, const char *module, const PGresult *r, char *sqlstate,
                        char *constraint);

#endif
