/* Postgres pools (platform/db.h): one bounded, lazily connected pool per
 * module plus "platform", each connection switched to its module's role.
 * It must never hand out a connection with another module's role, never log
 * statement parameters, and never wait past its budgets when Postgres is down. */
#include "platform/clock.h"
#include "platform/db.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/breaker.h" /* bh_now_ms */
#include "platform/err.h"
#include "platform/log.h"
#include "platform/module.h"

enum {
    DB_MAX_POOLS = 16,
    DB_NAME_MAX = 32, /* module names are [a-z_]{1,31} */
    STMT_SLOTS_LOG2 = 6,
    STMT_SLOTS = 1 << STMT_SLOTS_LOG2,    /* prepared statements per connection */
    STMT_MAX_CACHED = STMT_SLOTS * 3 / 4, /* keep probe chains short */
    DEFAULT_CONNECT_TIMEOUT_S = 2,
    RECONNECT_BACKOFF_MS = 500, /* after a failed connect, fail fast this long */
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

/* A statement held back by bh_tx_defer(), with its own copy of the parameters. */
struct db_deferred {
    const char *sql;    /* a literal, like every statement's */
    const char *module; /* whose role it runs under */
    int nparams;
    char *texts; /* owns what params[] point at */
    const char *params[DEFER_MAX_PARAMS];
};

struct bh_tx {
    struct db_conn *conn;
    const char *module; /* whose role runs statements now: a pool's name */
    /* BEGIN and role switches are not sent on their own: they travel in one
     * pipeline with the next statement, which saves a round trip each
     * (and shortens the time a transaction holds its row locks). */
    bool begin_pending;    /* BEGIN not sent yet */
    const char *role_sent; /* the role in effect on the server */
    /* Statements whose results nobody reads (outbox rows) wait here and
     * travel with the next statement or with COMMIT. */
    struct db_deferred deferred[DEFER_MAX];
    int n_deferred;
    char sqlstate[SQLSTATE_LEN + 1];
    char constraint[CONSTRAINT_MAX];
};

/* Set by bh_db_init() before any thread uses the pools, read-only afterwards. */
static struct {
    char *url;
    struct db_pool *pools;
    int n_pools;
    int wait_ms;
    int statement_timeout_ms;
    int connect_timeout_ms;
} g_db;

/* ---- small helpers ---------------------------------------------------------- */

/* libpq messages may span lines (hints, the failing line, a caret); the
 * first line says what happened, and a log entry is one line. */
static int msg_len(const char *msg)
{
    size_t n = strcspn(msg, "\n");

    while (n > 0 && msg[n - 1] == ' ')
        n--;
    return (int)n;
}

static struct db_pool *find_pool(const char *module)
{
    if (!bh_module_name_valid(module))
        return NULL;
    for (int i = 0; i < g_db.n_pools; i++)
        if (strcmp(g_db.pools[i].name, module) == 0)
            return &g_db.pools[i];
    return NULL;
}

static struct db_pool *find_pool_or_log(const char *module)
{
    struct db_pool *pool = find_pool(module);

    if (pool == NULL)
        bh_log(BH_LOG_ERROR, "platform", "db: no pool for module \"%s\"",
               bh_module_name_valid(module) ? module : "(invalid name)");
    return pool;
}

/* Server messages (NOTICE, WARNING, and the FATAL a server sends before it
 * drops an idle connection) go to the log, never to stderr raw. */
static void notice_receiver(void *arg, const PGresult *r)
{
    const char *pool = arg;
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    bool loud =
        severity != NULL && (strcmp(severity, "WARNING") == 0 || strcmp(severity, "FATAL") == 0 ||
                             strcmp(severity, "PANIC") == 0);

    bh_log(loud ? BH_LOG_WARN : BH_LOG_DEBUG, "platform", "db %s: postgres %s: %s", pool,
           severity ? severity : "NOTICE", msg ? msg : "");
}

/* ---- the prepared-statement cache ------------------------------------------ */

static unsigned stmt_hash(const char *sql)
{
    uint64_t h = (uint64_t)(uintptr_t)sql * UINT64_C(0x9E3779B97F4A7C15);

    return (unsigned)(h >> (64 - STMT_SLOTS_LOG2));
}

/* The slot keyed by sql's address, or NULL. */
static struct db_stmt *stmt_lookup(struct db_conn *c, const char *sql)
{
    for (unsigned i = stmt_hash(sql), n = 0; n < STMT_SLOTS; i = (i + 1) % STMT_SLOTS, n++) {
        if (c->stmts[i].key == sql)
            return &c->stmts[i];
        if (c->stmts[i].key == NULL)
            return NULL;
    }
    return NULL;
}

/* Records a statement prepared as "s<id>". Out of memory only means it
 * is not cached: the server-side statement is then simply never reused. */
static void stmt_insert(struct db_conn *c, const char *sql, unsigned id)
{
    unsigned i = stmt_hash(sql);
    char *text = strdup(sql);

    if (text == NULL)
        return;
    while (c->stmts[i].key != NULL)
        i = (i + 1) % STMT_SLOTS;
    c->stmts[i] = (struct db_stmt){.key = sql, .text = text, .id = id};
    c->n_stmts++;
}

static void stmt_cache_clear(struct db_conn *c)
{
    for (int i = 0; i < STMT_SLOTS; i++) {
        free(c->stmts[i].text);
        c->stmts[i] = (struct db_stmt){0};
    }
    c->n_stmts = 0;
    c->next_stmt_id = 0;
}

/* Runs sql on c: prepared once and then reused, or unprepared when the
 * cache is full. Returns what libpq returns (NULL only when out of memory). */
static PGresult *conn_run(struct db_conn *c, const char *sql, int nparams,
                          const char *const *params)
{
    struct db_stmt *s = stmt_lookup(c, sql);
    char name[16];

    if (s != NULL && strcmp(s->text, sql) != 0)
        return PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (s == NULL) {
        unsigned id;
        PGresult *r;

        if (c->n_stmts >= STMT_MAX_CACHED)
            return PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
        id = c->next_stmt_id++;
        snprintf(name, sizeof name, "s%u", id);
        r = PQprepare(c->pg, name, sql, nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return r; /* the error is the caller's to map */
        PQclear(r);
        stmt_insert(c, sql, id);
    } else {
        snprintf(name, sizeof name, "s%u", s->id);
    }
    return PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
}

/* One statement of a pipeline. Literal SQL (cacheable) is prepared once per
 * connection like conn_run() does; control statements (BEGIN, SET LOCAL
 * ROLE, COMMIT) are sent as they are. */
struct db_step {
    const char *sql;
    int nparams;
    const char *const *params;
    bool cacheable;
};

/* A statement prepared inside this pipeline, cached once the server said yes. */
struct db_new_stmt {
    const char *sql;
    unsigned id;
    int result_index; /* the index of the Prepare's result */
};

/* Runs steps[0..n) in one pipeline: one round trip. Returns the first error
 * among them, or the last step's result; like conn_run(), never NULL but on
 * OOM. What follows an error is aborted by the server, not run. */
static PGresult *conn_run_steps(struct db_conn *c, const struct db_step *steps, int n)
{
    PGconn *pg = c->pg;
    struct db_new_stmt fresh[PIPELINE_MAX];
    int n_fresh = 0, sent = 0;
    bool ok = true;

    assert(n > 0 && n <= PIPELINE_MAX);
    if (!PQenterPipelineMode(pg)) { /* not idle: should not happen; go step by step */
        for (int i = 0; i < n - 1; i++) {
            PGresult *r = steps[i].cacheable
                              ? conn_run(c, steps[i].sql, steps[i].nparams, steps[i].params)
                              : PQexec(pg, steps[i].sql);
            if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
                return r;
            PQclear(r);
        }
        return conn_run(c, steps[n - 1].sql, steps[n - 1].nparams, steps[n - 1].params);
    }
    for (int i = 0; ok && i < n; i++) {
        const struct db_step *st = &steps[i];
        const struct db_stmt *s = st->cacheable ? stmt_lookup(c, st->sql) : NULL;
        const struct db_new_stmt *f = NULL;
        char name[16];

        for (int k = 0; st->cacheable && s == NULL && k < n_fresh; k++)
            if (fresh[k].sql == st->sql)
                f = &fresh[k]; /* prepared earlier in this same pipeline */
        if (s != NULL && strcmp(s->text, st->sql) == 0) {
            snprintf(name, sizeof name, "s%u", s->id);
        } else if (f != NULL) {
            snprintf(name, sizeof name, "s%u", f->id);
        } else if (st->cacheable && s == NULL && c->n_stmts + n_fresh < STMT_MAX_CACHED) {
            unsigned id = c->next_stmt_id++; /* a failed Prepare only wastes a name */
            snprintf(name, sizeof name, "s%u", id);
            ok = PQsendPrepare(pg, name, st->sql, st->nparams, NULL) == 1;
            fresh[n_fresh++] =
                (struct db_new_stmt){.sql = st->sql, .id = id, .result_index = sent++};
        } else {
            ok = PQsendQueryParams(pg, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0) == 1;
            sent++;
            continue;
        }
        ok = ok && PQsendQueryPrepared(pg, name, st->nparams, st->params, NULL, NULL, 0) == 1;
        sent++;
    }
    ok = ok && PQpipelineSync(pg) == 1;

    /* Each command's results end with a NULL; the sync comes last. The first
     * error wins: what follows it is reported as aborted. */
    PGresult *last = NULL, *error = NULL;
    bool prepared[PIPELINE_MAX] = {false};
    int index = 0;
    while (ok) {
        PGresult *r = PQgetResult(pg);
        if (r == NULL) {
            if (PQstatus(pg) == CONNECTION_BAD || ++index > sent)
                break;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        for (int k = 0; k < n_fresh; k++)
            if (fresh[k].result_index == index && st == PGRES_COMMAND_OK)
                prepared[k] = true; /* kept by the server whatever follows */
        if (st == PGRES_FATAL_ERROR && error == NULL)
            error = r;
        else if (index == sent - 1 && last == NULL && st != PGRES_PIPELINE_ABORTED)
            last = r;
        else
            PQclear(r);
    }
    /* Results left behind: never reuse this connection. */
    if (!PQexitPipelineMode(pg))
        c->broken = true;
    /* Prepared statements outlive an aborted transaction. */
    for (int k = 0; k < n_fresh; k++)
        if (prepared[k])
            stmt_insert(c, fresh[k].sql, fresh[k].id);
    if (error != NULL || !ok || last == NULL) {
        PQclear(last);
        if (error == NULL) /* a send failed or the connection went away */
            error = PQmakeEmptyPGresult(pg, PGRES_FATAL_ERROR);
        return error;
    }
    return last;
}

/* ---- connections ------------------------------------------------------------- */

/* Connects without blocking past deadline_ms (libpq's own connect_timeout is
 * only honoured by its blocking calls). Returns a ready connection, or NULL
 * with the reason in why. */
static PGconn *connect_until(const char *app_name, int64_t deadline_ms, char *why, size_t why_size)
{
    /* Processed in order: the URL may override connect_timeout, not the
     * application name. */
    char timeout_s[16];
    const char *const keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *const vals[] = {timeout_s, g_db.url, app_name, NULL};
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    PGconn *pg;

    snprintf(timeout_s, sizeof timeout_s, "%d", (g_db.connect_timeout_ms + 999) / 1000);
    pg = PQconnectStartParams(keys, vals, 1);
    if (pg == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (PQstatus(pg) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd p = {.fd = PQsocket(pg),
                           .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int64_t left = deadline_ms - bh_now_ms();
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, why_size, "%s", n == 0 ? "timed out" : strerror(errno));
            goto out_fail;
        }
        st = PQconnectPoll(pg);
    }
    if (st == PGRES_POLLING_OK)
        return pg;
    snprintf(why, why_size, "%.*s", msg_len(PQerrorMessage(pg)), PQerrorMessage(pg));
out_fail:
    PQfinish(pg);
    return NULL;
}

/* Opens c: connect, then take the module's role and the statement timeout.
 * Returns 0 or BH_EUNAVAILABLE (logged; loudly only on the first failure
 * of a run, so a down database does not flood the log). */
static int conn_open(struct db_pool *pool, struct db_conn *c, int64_t deadline_ms)
{
    char app_name[DB_NAME_MAX + 16], setup[128], why[256];
    int64_t connect_deadline = bh_now_ms() + g_db.connect_timeout_ms;
    PGresult *r = NULL;
    PGconn *pg;
    bool first_failure;

    assert(c->pg == NULL);
    /* The caller's budget ran out while it waited for a free slot: that says
     * nothing about the server, so it is not a failure to remember. */
    if (deadline_ms <= bh_now_ms())
        return BH_EUNAVAILABLE;
    snprintf(app_name, sizeof app_name, "bulkhead:%s", pool->name);
    pg = connect_until(app_name, deadline_ms < connect_deadline ? deadline_ms : connect_deadline,
                       why, sizeof why);
    if (pg == NULL)
        goto out_fail;
    PQsetNoticeReceiver(pg, notice_receiver, pool->name);

    snprintf(setup, sizeof setup, "SET ROLE bh_%s; SET statement_timeout = %d", pool->name,
             g_db.statement_timeout_ms);
    r = PQexec(pg, setup);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(why, sizeof why, "cannot take role bh_%s: %.*s", pool->name,
                 msg_len(PQerrorMessage(pg)), PQerrorMessage(pg));
        goto out_close;
    }
    PQclear(r);

    c->pg = pg;
    pthread_mutex_lock(&pool->lock);
    pool->open++;
    pool->last_connect_failure_ms = 0;
    pthread_mutex_unlock(&pool->lock);
    return 0;

out_close:
    PQclear(r);
    PQfinish(pg);
out_fail:
    pthread_mutex_lock(&pool->lock);
    first_failure = pool->last_connect_failure_ms == 0;
    pool->last_connect_failure_ms = bh_now_ms();
    pthread_mutex_unlock(&pool->lock);
    bh_log(first_failure ? BH_LOG_WARN : BH_LOG_DEBUG, "platform",
           "db %s: cannot open a connection: %s", pool->name, why);
    return BH_EUNAVAILABLE;
}

static void conn_close(struct db_pool *pool, struct db_conn *c)
{
    if (c->pg == NULL)
        return;
    PQfinish(c->pg);
    c->pg = NULL;
    c->broken = false;
    stmt_cache_clear(c);
    pthread_mutex_lock(&pool->lock);
    pool->open--;
    pthread_mutex_unlock(&pool->lock);
}

/* An idle connection can die unseen (server restart, pg_terminate_backend):
 * the server sends a FATAL and closes the socket. Reading whatever arrived
 * while idle notices that without a round trip. */
static bool conn_alive(struct db_conn *c)
{
    for (int i = 0; i < 4 && PQstatus(c->pg) == CONNECTION_OK; i++) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        PGnotify *n;

        if (poll(&p, 1, 0) <= 0)
            break; /* nothing arrived: alive as far as anyone can tell */
        if (!PQconsumeInput(c->pg))
            return false;
        while ((n = PQnotifies(c->pg)) != NULL)
            PQfreemem(n);
    }
    return PQstatus(c->pg) == CONNECTION_OK;
}

/* ---- the pool ------------------------------------------------------------------ */

/* A free connection, preferring one already open. Called with the lock held. */
static struct db_conn *pool_pick(struct db_pool *pool)
{
    struct db_conn *unopened = NULL;

    for (int i = 0; i < pool->size; i++) {
        struct db_conn *c = &pool->conns[i];

        if (c->in_use)
            continue;
        if (c->pg != NULL)
            return c;
        if (unopened == NULL)
            unopened = c;
    }
    return unopened;
}

static void pool_release(struct db_pool *pool, struct db_conn *c)
{
    /* Never pool a connection that is broken or still inside a transaction. */
    if (c->pg != NULL && (c->broken || PQstatus(c->pg) != CONNECTION_OK ||
                          PQtransactionStatus(c->pg) != PQTRANS_IDLE))
        conn_close(pool, c);
    pthread_mutex_lock(&pool->lock);
    c->in_use = false;
    pool->in_use--;
    pthread_cond_signal(&pool->available);
    pthread_mutex_unlock(&pool->lock);
}

/* Takes a connection from pool, waiting at most wait_ms for a free one, and
 * makes sure it is open (connecting by connect_deadline_ms at the latest,
 * and not at all within RECONNECT_BACKOFF_MS of a failed attempt).
 * Returns 0 or BH_EUNAVAILABLE. */
static int pool_acquire(struct db_pool *pool, int wait_ms, int64_t connect_deadline_ms,
                        struct db_conn **out)
{
    struct timespec until = bh_deadline_ms(wait_ms);
    struct db_conn *c;
    bool timed_out = false, backing_off;

    pthread_mutex_lock(&pool->lock);
    while ((c = pool_pick(pool)) == NULL) {
        if (timed_out) {
            pool->timeouts++;
            pthread_mutex_unlock(&pool->lock);
            bh_log(BH_LOG_WARN, "platform", "db %s: no free connection within %d ms (pool of %d)",
                   pool->name, wait_ms, pool->size);
            return BH_EUNAVAILABLE;
        }
        pool->waiting++;
        timed_out = pthread_cond_timedwait(&pool->available, &pool->lock, &until) == ETIMEDOUT;
        pool->waiting--;
    }
    c->in_use = true;
    pool->in_use++;
    backing_off = pool->last_connect_failure_ms != 0 &&
                  bh_now_ms() - pool->last_connect_failure_ms < RECONNECT_BACKOFF_MS;
    pthread_mutex_unlock(&pool->lock);

    if (c->pg != NULL && !conn_alive(c)) {
        bh_log(BH_LOG_INFO, "platform", "db %s: dropping a connection the server closed",
               pool->name);
        conn_close(pool, c);
        backing_off = false; /* one transparent reconnect */
    }
    if (c->pg == NULL && (backing_off || conn_open(pool, c, connect_deadline_ms) != 0)) {
        pool_release(pool, c);
        return BH_EUNAVAILABLE;
    }
    *out = c;
    return 0;
}

static int pool_init(struct db_pool *pool, const char *name, int size)
{
    pthread_condattr_t attr;
    bool cond_ok;

    snprintf(pool->name, sizeof pool->name, "%s", name);
    pool->size = size;
    pool->conns = calloc((size_t)size, sizeof *pool->conns);
    if (pool->conns == NULL)
        return BH_ENOMEM;
    for (int i = 0; i < size; i++)
        pool->conns[i].pool = pool;
    if (pthread_condattr_init(&attr) != 0)
        goto out_free_conns;
    /* Waits are budgets: measure them on a clock that never jumps. */
    cond_ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&pool->available, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!cond_ok)
        goto out_free_conns;
    if (pthread_mutex_init(&pool->lock, NULL) != 0)
        goto out_destroy_cond;
    return 0;

out_destroy_cond:
    pthread_cond_destroy(&pool->available);
out_free_conns:
    free(pool->conns);
    pool->conns = NULL;
    return BH_ENOMEM;
}

static void pool_release_all(struct db_pool *pool)
{
    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i].in_use)
            bh_log(BH_LOG_WARN, "platform", "db %s: shutting down with a connection in use",
                   pool->name);
        conn_close(pool, &pool->conns[i]);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->available);
    free(pool->conns);
}

/* ---- errors -------------------------------------------------------------------- */

static bool sqlstate_is(const char *state, const char *prefix)
{
    return strncmp(state, prefix, strlen(prefix)) == 0;
}

/* Maps a failed result (NULL when libpq ran out of memory) to a bh_err,
 * records its SQLSTATE and constraint in tx, and marks the connection
 * broken when it is. Logs what callers cannot fix; never the parameters. */
static int result_error(struct bh_tx *tx, const PGresult *r)
{
    PGconn *pg = tx->conn->pg;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (msg == NULL)
        msg = PQerrorMessage(pg);
    snprintf(tx->sqlstate, sizeof tx->sqlstate, "%s", state ? state : "");
    snprintf(tx->constraint, sizeof tx->constraint, "%s", constraint ? constraint : "");

    if (PQstatus(pg) != CONNECTION_OK || sqlstate_is(tx->sqlstate, "08") ||
        sqlstate_is(tx->sqlstate, "57P0")) {
        /* 08xxx: connection exception; 57P01-57P03: the server is going
         * away. Either way this connection is done for. */
        tx->conn->broken = true;
        bh_log(BH_LOG_WARN, "platform", "db %s: connection lost: %.*s", tx->module, msg_len(msg),
               msg);
        return BH_EUNAVAILABLE;
    }
    if (strcmp(tx->sqlstate, "23505") == 0 || strcmp(tx->sqlstate, "23P01") == 0 ||
        strcmp(tx->sqlstate, "40001") == 0 || strcmp(tx->sqlstate, "40P01") == 0)
        return BH_ECONFLICT; /* unique/exclusion; serialization/deadlock: retryable */
    if (sqlstate_is(tx->sqlstate, "23") || sqlstate_is(tx->sqlstate, "22"))
        return BH_EINVAL; /* 23503, 23502, 23514, 22P02 and other data errors */
    if (strcmp(tx->sqlstate, "57014") == 0 || strcmp(tx->sqlstate, "55P03") == 0)
        return BH_ETIMEOUT; /* statement timeout; lock timeout */
    if (strcmp(tx->sqlstate, "42501") == 0) {
        /* A module role touched what it does not own: fence 3 held, and
         * the code that tried is wrong. */
        bh_log(BH_LOG_ERROR, "platform", "db %s: permission denied (SQLSTATE 42501): %.*s",
               tx->module, msg_len(msg), msg);
        return BH_EFORBIDDEN;
    }
    bh_log(BH_LOG_ERROR, "platform", "db %s: statement failed (SQLSTATE %s): %.*s", tx->module,
           tx->sqlstate[0] ? tx->sqlstate : "none", msg_len(msg), msg);
    return BH_EINTERNAL;
}

static void deferred_clear(struct bh_tx *tx)
{
    for (int i = 0; i < tx->n_deferred; i++)
        free(tx->deferred[i].texts);
    tx->n_deferred = 0;
}

/* Ends tx: returns its connection to the pool and frees the handle. */
static void tx_free(struct bh_tx *tx)
{
    deferred_clear(tx);
    pool_release(tx->conn->pool, tx->conn);
    free(tx);
}

/* The steps of one pipeline, and the role in effect after them. */
struct tx_pipeline {
    struct db_step steps[PIPELINE_MAX];
    char set_role[PIPELINE_MAX][DB_NAME_MAX + 24];
    int n;
    const char *role;
};

/* Adds SET LOCAL ROLE when module's role is not the one in effect. */
static void pipeline_take_role(struct tx_pipeline *p, const char *module)
{
    if (module == p->role)
        return;
    char *sql = p->set_role[p->n];
    snprintf(sql, sizeof p->set_role[p->n], "SET LOCAL ROLE bh_%s", module);
    p->steps[p->n++] = (struct db_step){.sql = sql};
    p->role = module;
}

/* Sends what tx holds back (BEGIN, deferred statements, role switches) and
 * then last, in one pipeline; last runs under the transaction's current
 * role unless it is COMMIT. Returns like conn_run_steps(). Whatever the
 * outcome, all of it was sent: after an error the transaction is aborted. */
static PGresult *tx_run_pipeline(struct bh_tx *tx, const struct db_step *last, bool last_needs_role)
{
    struct tx_pipeline p = {.role = tx->role_sent};

    if (tx->begin_pending)
        p.steps[p.n++] = (struct db_step){.sql = "BEGIN"};
    for (int i = 0; i < tx->n_deferred; i++) {
        const struct db_deferred *d = &tx->deferred[i];
        pipeline_take_role(&p, d->module);
        p.steps[p.n++] = (struct db_step){
            .sql = d->sql, .nparams = d->nparams, .params = d->params, .cacheable = true};
    }
    if (last_needs_role)
        pipeline_take_role(&p, tx->module);
    p.steps[p.n++] = *last;

    PGresult *r = conn_run_steps(tx->conn, p.steps, p.n);
    tx->begin_pending = false;
    tx->role_sent = p.role;
    deferred_clear(tx);
    return r;
}

/* ---- public API ----------------------------------------------------------------- */

int bh_db_init(const char *database_url, const char *const *modules, int n_modules, int pool_size,
               int wait_ms, int statement_timeout_ms)
{
    PQconninfoOption *opts;
    char *parse_error = NULL;
    int rc;

    if (g_db.pools != NULL) {
        bh_log(BH_LOG_ERROR, "platform", "db: bh_db_init called twice");
        return BH_EINVAL;
    }
    if (database_url == NULL || n_modules < 0 || n_modules >= DB_MAX_POOLS || pool_size < 1 ||
        wait_ms < 0 || statement_timeout_ms < 0 || (n_modules > 0 && modules == NULL)) {
        bh_log(BH_LOG_ERROR, "platform", "db: invalid pool configuration");
        return BH_EINVAL;
    }
    for (int i = 0; i < n_modules; i++) {
        if (!bh_module_name_valid(modules[i])) {
            bh_log(BH_LOG_ERROR, "platform", "db: invalid module name");
            return BH_EINVAL;
        }
    }
    /* Parse the URL now, so a typo fails at start-up, not on first use. */
    opts = PQconninfoParse(database_url, &parse_error);
    if (opts == NULL) {
        bh_log(BH_LOG_ERROR, "platform", "db: DATABASE_URL is not valid: %.*s",
               parse_error ? msg_len(parse_error) : 0, parse_error ? parse_error : "");
        PQfreemem(parse_error);
        return BH_EINVAL;
    }
    g_db.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_S * 1000;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL && atoi(o->val) > 0)
            g_db.connect_timeout_ms = atoi(o->val) * 1000;
    PQconninfoFree(opts);

    g_db.url = strdup(database_url);
    g_db.pools = calloc((size_t)n_modules + 1, sizeof *g_db.pools);
    if (g_db.url == NULL || g_db.pools == NULL) {
        rc = BH_ENOMEM;
        goto out_fail;
    }
    g_db.wait_ms = wait_ms;
    g_db.statement_timeout_ms = statement_timeout_ms;
    for (int i = -1; i < n_modules; i++) {
        const char *name = i < 0 ? "platform" : modules[i];

        if (find_pool(name) != NULL)
            continue; /* "platform" listed explicitly, or a duplicate */
        rc = pool_init(&g_db.pools[g_db.n_pools], name, pool_size);
        if (rc != 0)
            goto out_fail;
        g_db.n_pools++;
    }
    return 0;

out_fail:
    bh_db_shutdown();
    return rc;
}

/* Closes every pool. Called once, after every thread that used them stopped. */
void bh_db_shutdown(void)
{
    for (int i = 0; i < g_db.n_pools; i++)
        pool_release_all(&g_db.pools[i]);
    free(g_db.pools);
    free(g_db.url);
    memset(&g_db, 0, sizeof g_db);
}

int bh_tx_begin_as(const char *module, struct bh_tx **out)
{
    struct db_pool *pool = find_pool_or_log(module);
    struct bh_tx *tx;
    int rc;

    *out = NULL;
    if (pool == NULL)
        return BH_EINTERNAL; /* a module without a pool: a wiring bug */
    tx = calloc(1, sizeof *tx);
    if (tx == NULL)
        return BH_ENOMEM;
    tx->module = pool->name;
    tx->role_sent = pool->name; /* the connection's session role */
    rc = pool_acquire(pool, g_db.wait_ms, INT64_MAX, &tx->conn);
    if (rc != 0)
        goto out_free;
    tx->begin_pending = true; /* sent with the first statement */
    *out = tx;
    return 0;

out_free:
    free(tx);
    return rc;
}

int bh_tx_commit(struct bh_tx *tx)
{
    PGconn *pg;
    PGresult *r;
    int rc = 0;

    assert(tx != NULL);
    pg = tx->conn->pg;
    if (tx->begin_pending && tx->n_deferred == 0) { /* nothing ran: nothing to commit */
        tx_free(tx);
        return 0;
    }
    if (tx->n_deferred > 0) /* the held-back statements travel with COMMIT */
        r = tx_run_pipeline(tx, &(struct db_step){.sql = "COMMIT"}, false);
    else
        r = PQexec(pg, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = result_error(tx, r); /* deferred constraints, 40001, a deferred statement ... */
    } else if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        /* Postgres answers COMMIT of a failed transaction with ROLLBACK:
         * the caller went on after an error it should have handled. */
        bh_log(BH_LOG_ERROR, "platform",
               "db %s: COMMIT of a failed transaction rolled back (last SQLSTATE %s)", tx->module,
               tx->sqlstate[0] ? tx->sqlstate : "unknown");
        rc = BH_EINTERNAL;
    }
    PQclear(r);
    /* A statement failed before COMMIT in the same pipeline: COMMIT never
     * ran and the transaction is still open, aborted. End it here so the
     * connection can go back to the pool. */
    if (rc != 0 && PQtransactionStatus(pg) == PQTRANS_INERROR) {
        r = PQexec(pg, "ROLLBACK");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            tx->conn->broken = true;
        PQclear(r);
    }
    tx_free(tx);
    return rc;
}

void bh_tx_rollback(struct bh_tx *tx)
{
    PGresult *r;

    if (tx == NULL)
        return;
    /* Deferred statements were never sent: dropping them is their rollback. */
    if (!tx->begin_pending && PQstatus(tx->conn->pg) == CONNECTION_OK) {
        r = PQexec(tx->conn->pg, "ROLLBACK");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            tx->conn->broken = true; /* pool_release will not trust it again */
        PQclear(r);
    }
    tx_free(tx);
}

int bh_tx_query(struct bh_tx *tx, PGresult **res, const char *sql, int nparams,
                const char *const *params)
{
    PGresult *r;
    ExecStatusType st;
    int rc;

    assert(tx != NULL && sql != NULL && nparams >= 0 && (nparams == 0 || params != NULL));
    if (res != NULL)
        *res = NULL;
    tx->sqlstate[0] = '\0';
    tx->constraint[0] = '\0';

    if (tx->begin_pending || tx->role_sent != tx->module || tx->n_deferred > 0) {
        const struct db_step step = {
            .sql = sql, .nparams = nparams, .params = params, .cacheable = true};
        r = tx_run_pipeline(tx, &step, true);
    } else {
        r = conn_run(tx->conn, sql, nparams, params);
    }
    st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        rc = result_error(tx, r);
        PQclear(r);
        return rc;
    }
    if (res != NULL)
        *res = r;
    else
        PQclear(r);
    return 0;
}

int bh_tx_defer(struct bh_tx *tx, const char *sql, int nparams, const char *const *params)
{
    struct db_deferred *d;
    size_t size = 0;
    char *p;

    assert(tx != NULL && sql != NULL && nparams >= 0 && (nparams == 0 || params != NULL));
    if (nparams > DEFER_MAX_PARAMS || tx->n_deferred == DEFER_MAX)
        return bh_tx_query(tx, NULL, sql, nparams, params); /* runs now, with the queue */
    for (int i = 0; i < nparams; i++)
        size += params[i] ? strlen(params[i]) + 1 : 0;
    d = &tx->deferred[tx->n_deferred];
    *d = (struct db_deferred){.sql = sql, .module = tx->module, .nparams = nparams};
    if (size > 0 && (d->texts = malloc(size)) == NULL)
        return BH_ENOMEM;
    p = d->texts;
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL)
            continue; /* SQL NULL */
        size_t len = strlen(params[i]) + 1;
        d->params[i] = memcpy(p, params[i], len);
        p += len;
    }
    tx->n_deferred++;
    return 0;
}

const char *bh_tx_sqlstate(const struct bh_tx *tx)
{
    return tx->sqlstate;
}

const char *bh_tx_constraint(const struct bh_tx *tx)
{
    return tx->constraint;
}

/* SET LOCAL ROLE: the switch ends with the transaction at the latest. */
static int tx_switch_role(struct bh_tx *tx, const char *module)
{
    struct db_pool *pool = find_pool_or_log(module);

    if (pool == NULL)
        return BH_EINTERNAL; /* a module without a pool: a wiring bug */
    /* Sent with the next statement (bh_tx_query), or never if the role
     * changes back first or the transaction ends. */
    tx->module = pool->name;
    return 0;
}

int bh_tx_enter_as(struct bh_tx *tx, const char *module, const char **prev)
{
    assert(tx != NULL && prev != NULL);
    *prev = tx->module;
    return tx_switch_role(tx, module);
}

int bh_tx_leave(struct bh_tx *tx, const char *prev)
{
    assert(tx != NULL);
    return tx_switch_role(tx, prev);
}

const char *bh_tx_module(const struct bh_tx *tx)
{
    return tx->module;
}

void *bh_tx_conn(struct bh_tx *tx)
{
    return tx->conn;
}

int bh_db_query_as(const char *module, PGresult **res, const char *sql, int nparams,
                   const char *const *params)
{
    struct db_pool *pool = find_pool_or_log(module);
    /* A handle without BEGIN: the statement runs in autocommit. */
    struct bh_tx tx = {0};
    int rc;

    if (res != NULL)
        *res = NULL;
    if (pool == NULL)
        return BH_EINTERNAL; /* a module without a pool: a wiring bug */
    tx.module = pool->name;
    tx.role_sent = pool->name; /* the session role: no SET LOCAL outside a transaction */
    rc = pool_acquire(pool, g_db.wait_ms, INT64_MAX, &tx.conn);
    if (rc != 0)
        return rc;
    rc = bh_tx_query(&tx, res, sql, nparams, params);
    pool_release(pool, tx.conn);
    return rc;
}

/* SELECT 1 that gives up at deadline_ms, even if the server stopped
 * answering: a frozen database must not freeze the readiness probe. */
static int ping_conn(struct db_conn *c, int64_t deadline_ms)
{
    PGresult *r;
    bool ok = true;

    if (!PQsendQuery(c->pg, "SELECT 1"))
        goto out_broken;
    while (PQisBusy(c->pg)) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        int64_t left = deadline_ms - bh_now_ms();
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || !PQconsumeInput(c->pg))
            goto out_broken; /* a query is in flight: only closing ends it */
    }
    while ((r = PQgetResult(c->pg)) != NULL) {
        ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        goto out_broken;
    return ok ? 0 : BH_EUNAVAILABLE;

out_broken:
    c->broken = true;
    return BH_EUNAVAILABLE;
}

int bh_db_ping(const char *module, int timeout_ms)
{
    struct db_pool *pool = find_pool_or_log(module);
    int64_t deadline = bh_now_ms() + timeout_ms;
    struct db_conn *c;
    int rc;

    if (pool == NULL)
        return BH_EINVAL;
    if (pool_acquire(pool, timeout_ms, deadline, &c) != 0)
        return BH_EUNAVAILABLE;
    rc = ping_conn(c, deadline);
    pool_release(pool, c);
    return rc;
}

int bh_db_pool_stats(const char *module, struct bh_db_pool_stats *out)
{
    struct db_pool *pool = find_pool(module);

    if (pool == NULL)
        return BH_EINVAL;
    pthread_mutex_lock(&pool->lock);
    *out = (struct bh_db_pool_stats){.size = pool->size,
                                     .open = pool->open,
                                     .in_use = pool->in_use,
                                     .waiting = pool->waiting,
                                     .timeouts = pool->timeouts};
    pthread_mutex_unlock(&pool->lock);
    return 0;
}
