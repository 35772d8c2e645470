/* Transactions and statements (platform/db.h) on the module pools of
 * db_pool.c. BEGIN, role switches and statements whose results nobody reads
 * travel in one pipeline with the next statement. It must never run a
 * statement under another module's role than the one the caller holds, and
 * never log statement parameters. */
#include "platform/db.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "platform/err.h"
#include "platform/log.h"

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

/* Maps a failed result to a bh_err and records its SQLSTATE and constraint. */
static int tx_error(struct bh_tx *tx, const PGresult *r)
{
    return bh__db_result_error(tx->conn, tx->module, r, tx->sqlstate, tx->constraint);
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
    bh__db_pool_release(tx->conn->pool, tx->conn);
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
 * role unless it is COMMIT. Returns like bh__db_conn_run_steps(). Whatever the
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

    PGresult *r = bh__db_conn_run_steps(tx->conn, p.steps, p.n);
    tx->begin_pending = false;
    tx->role_sent = p.role;
    deferred_clear(tx);
    return r;
}

/* ---- public API ----------------------------------------------------------------- */

int bh_tx_begin_as(const char *module, struct bh_tx **out)
{
    struct db_pool *pool = bh__db_pool_find(module);
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
    rc = bh__db_pool_acquire(pool, DB_WAIT_CONFIGURED, INT64_MAX, &tx->conn);
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
        rc = tx_error(tx, r); /* deferred constraints, 40001, a deferred statement ... */
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
            tx->conn->broken = true; /* the pool will not trust it again */
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
        r = bh__db_conn_run(tx->conn, sql, nparams, params);
    }
    st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        rc = tx_error(tx, r);
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
    struct db_pool *pool = bh__db_pool_find(module);

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

int bh_db_query_as(const char *module, PGresult **res, const char *sql, int nparams,
                   const char *const *params)
{
    struct db_pool *pool = bh__db_pool_find(module);
    /* A handle without BEGIN: the statement runs in autocommit. */
    struct bh_tx tx = {0};
    int rc;

    if (res != NULL)
        *res = NULL;
    if (pool == NULL)
        return BH_EINTERNAL; /* a module without a pool: a wiring bug */
    tx.module = pool->name;
    tx.role_sent = pool->name; /* the session role: no SET LOCAL outside a transaction */
    rc = bh__db_pool_acquire(pool, DB_WAIT_CONFIGURED, INT64_MAX, &tx.conn);
    if (rc != 0)
        return rc;
    rc = bh_tx_query(&tx, res, sql, nparams, params);
    bh__db_pool_release(pool, tx.conn);
    return rc;
}
