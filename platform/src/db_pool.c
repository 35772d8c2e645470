/* Postgres pools (platform/db.h): one bounded, lazily connected pool per
 * module plus "platform", each connection switched to its module's role.
 * It must never hand out a connection with another module's role, and never
 * wait past its budgets when Postgres is down. */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "pg.h"
#include "platform/breaker.h" /* bh_now_ms */
#include "platform/clock.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/module.h"

enum {
    DB_MAX_POOLS = 16,
    RECONNECT_BACKOFF_MS = 500, /* after a failed connect, fail fast this long */
};

/* Set by bh_db_init() before any thread uses the pools, read-only afterwards. */
static struct {
    char *url;
    struct db_pool *pools;
    int n_pools;
    int wait_ms;
    int statement_timeout_ms;
} g_db;

static struct db_pool *find_pool(const char *module)
{
    if (!bh_module_name_valid(module))
        return NULL;
    for (int i = 0; i < g_db.n_pools; i++)
        if (strcmp(g_db.pools[i].name, module) == 0)
            return &g_db.pools[i];
    return NULL;
}

struct db_pool *bh__db_pool_find(const char *module)
{
    struct db_pool *pool = find_pool(module);

    if (pool == NULL)
        bh_log(BH_LOG_ERROR, "platform", "db: no pool for module \"%s\"",
               bh_module_name_valid(module) ? module : "(invalid name)");
    return pool;
}

/* ---- connections ------------------------------------------------------------- */

/* Opens c: connect, then take the module's role and the statement timeout.
 * Returns 0 or BH_EUNAVAILABLE (logged; loudly only on the first failure
 * of a run, so a down database does not flood the log). */
static int conn_open(struct db_pool *pool, struct db_conn *c, int64_t deadline_ms)
{
    char setup[128], why[256];
    PGresult *r = NULL;
    PGconn *pg;
    bool first_failure;

    assert(c->pg == NULL);
    /* The caller's budget ran out while it waited for a free slot: that says
     * nothing about the server, so it is not a failure to remember. */
    if (deadline_ms <= bh_now_ms())
        return BH_EUNAVAILABLE;
    pg = bh__pg_connect(g_db.url, pool->name, deadline_ms, why, sizeof why);
    if (pg == NULL)
        goto out_fail;

    snprintf(setup, sizeof setup, "SET ROLE bh_%s; SET statement_timeout = %d", pool->name,
             g_db.statement_timeout_ms);
    r = PQexec(pg, setup);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(why, sizeof why, "cannot take role bh_%s: %.*s", pool->name,
                 bh__pg_msg_len(PQerrorMessage(pg)), PQerrorMessage(pg));
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
    bh__db_stmt_cache_clear(c);
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

void bh__db_pool_release(struct db_pool *pool, struct db_conn *c)
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

int bh__db_pool_acquire(struct db_pool *pool, int wait_ms, int64_t connect_deadline_ms,
                        struct db_conn **out)
{
    struct timespec until;
    struct db_conn *c;
    bool timed_out = false, backing_off;

    if (wait_ms == DB_WAIT_CONFIGURED)
        wait_ms = g_db.wait_ms;
    until = bh_deadline_ms(wait_ms);

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
        bh__db_pool_release(pool, c);
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

/* ---- public API ----------------------------------------------------------------- */

int bh_db_init(const char *database_url, const char *const *modules, int n_modules, int pool_size,
               int wait_ms, int statement_timeout_ms)
{
    char why[256];
    int budget_ms, rc;

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
    if (bh__pg_connect_budget_ms(database_url, &budget_ms, why, sizeof why) != 0) {
        bh_log(BH_LOG_ERROR, "platform", "db: DATABASE_URL is not valid: %s", why);
        return BH_EINVAL;
    }

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
    struct db_pool *pool = bh__db_pool_find(module);
    int64_t deadline = bh_now_ms() + timeout_ms;
    struct db_conn *c;
    int rc;

    if (pool == NULL)
        return BH_EINVAL;
    if (bh__db_pool_acquire(pool, timeout_ms, deadline, &c) != 0)
        return BH_EUNAVAILABLE;
    rc = ping_conn(c, deadline);
    bh__db_pool_release(pool, c);
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
