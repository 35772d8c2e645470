/* Statements on one connection (db_internal.h): the prepared-statement
 * cache, keyed by the address of the SQL literal, and pipelines that send
 * several statements in one round trip. It must never run a cached
 * statement whose text differs from the caller's SQL. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

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

void bh__db_stmt_cache_clear(struct db_conn *c)
{
    for (int i = 0; i < STMT_SLOTS; i++) {
        free(c->stmts[i].text);
        c->stmts[i] = (struct db_stmt){0};
    }
    c->n_stmts = 0;
    c->next_stmt_id = 0;
}

PGresult *bh__db_conn_run(struct db_conn *c, const char *sql, int nparams,
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

/* A statement prepared inside this pipeline, cached once the server said yes. */
struct db_new_stmt {
    const char *sql;
    unsigned id;
    int result_index; /* the index of the Prepare's result */
};

/* The statements prepared by one pipeline, and what it sent. */
struct pipeline {
    struct db_new_stmt fresh[PIPELINE_MAX];
    bool prepared[PIPELINE_MAX]; /* the server said yes to fresh[k]'s Prepare */
    int n_fresh;
    int sent; /* commands sent, each answered by its results and a NULL */
};

/* Without pipeline mode (the connection is not idle: should not happen),
 * the steps run one by one. Returns like bh__db_conn_run_steps(). */
static PGresult *run_one_by_one(struct db_conn *c, const struct db_step *steps, int n)
{
    for (int i = 0; i < n - 1; i++) {
        PGresult *r = steps[i].cacheable
                          ? bh__db_conn_run(c, steps[i].sql, steps[i].nparams, steps[i].params)
                          : PQexec(c->pg, steps[i].sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            return r;
        PQclear(r);
    }
    return bh__db_conn_run(c, steps[n - 1].sql, steps[n - 1].nparams, steps[n - 1].params);
}

/* Queues the steps and the sync: a cached statement by its name, a new
 * cacheable one as Prepare then Execute, the rest unprepared. False when a
 * send failed (the connection is gone). */
static bool pipeline_send(struct db_conn *c, const struct db_step *steps, int n, struct pipeline *p)
{
    PGconn *pg = c->pg;
    bool ok = true;

    for (int i = 0; ok && i < n; i++) {
        const struct db_step *st = &steps[i];
        const struct db_stmt *s = st->cacheable ? stmt_lookup(c, st->sql) : NULL;
        const struct db_new_stmt *f = NULL;
        char name[16];

        for (int k = 0; st->cacheable && s == NULL && k < p->n_fresh; k++)
            if (p->fresh[k].sql == st->sql)
                f = &p->fresh[k]; /* prepared earlier in this same pipeline */
        if (s != NULL && strcmp(s->text, st->sql) == 0) {
            snprintf(name, sizeof name, "s%u", s->id);
        } else if (f != NULL) {
            snprintf(name, sizeof name, "s%u", f->id);
        } else if (st->cacheable && s == NULL && c->n_stmts + p->n_fresh < STMT_MAX_CACHED) {
            unsigned id = c->next_stmt_id++; /* a failed Prepare only wastes a name */
            snprintf(name, sizeof name, "s%u", id);
            ok = PQsendPrepare(pg, name, st->sql, st->nparams, NULL) == 1;
            p->fresh[p->n_fresh++] =
                (struct db_new_stmt){.sql = st->sql, .id = id, .result_index = p->sent++};
        } else {
            ok = PQsendQueryParams(pg, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0) == 1;
            p->sent++;
            continue;
        }
        ok = ok && PQsendQueryPrepared(pg, name, st->nparams, st->params, NULL, NULL, 0) == 1;
        p->sent++;
    }
    return ok && PQpipelineSync(pg) == 1;
}

/* Reads every result up to the sync. Each command's results end with a
 * NULL; the sync comes last. The first error wins (*error): what follows it
 * is reported as aborted. *last is the last command's result. */
static void pipeline_collect(PGconn *pg, struct pipeline *p, PGresult **last, PGresult **error)
{
    int index = 0;

    for (;;) {
        PGresult *r = PQgetResult(pg);
        if (r == NULL) {
            if (PQstatus(pg) == CONNECTION_BAD || ++index > p->sent)
                return;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return;
        }
        for (int k = 0; k < p->n_fresh; k++)
            if (p->fresh[k].result_index == index && st == PGRES_COMMAND_OK)
                p->prepared[k] = true; /* kept by the server whatever follows */
        if (st == PGRES_FATAL_ERROR && *error == NULL)
            *error = r;
        else if (index == p->sent - 1 && *last == NULL && st != PGRES_PIPELINE_ABORTED)
            *last = r;
        else
            PQclear(r);
    }
}

PGresult *bh__db_conn_run_steps(struct db_conn *c, const struct db_step *steps, int n)
{
    struct pipeline p = {.n_fresh = 0};
    PGresult *last = NULL, *error = NULL;
    bool ok;

    assert(n > 0 && n <= PIPELINE_MAX);
    if (!PQenterPipelineMode(c->pg))
        return run_one_by_one(c, steps, n);
    ok = pipeline_send(c, steps, n, &p);
    if (ok)
        pipeline_collect(c->pg, &p, &last, &error);
    /* Results left behind: never reuse this connection. */
    if (!PQexitPipelineMode(c->pg))
        c->broken = true;
    /* Prepared statements outlive an aborted transaction. */
    for (int k = 0; k < p.n_fresh; k++)
        if (p.prepared[k])
            stmt_insert(c, p.fresh[k].sql, p.fresh[k].id);
    if (error != NULL || !ok || last == NULL) {
        PQclear(last);
        if (error == NULL) /* a send failed or the connection went away */
            error = PQmakeEmptyPGresult(c->pg, PGRES_FATAL_ERROR);
        return error;
    }
    return last;
}
