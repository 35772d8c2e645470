/* Idempotent consumers (bh_inbox_seen, events.h): records "consumer handled
 * event" in the inbox table of the module whose role the transaction runs
 * as, on that transaction, so the record and the handler's effect commit or
 * roll back together. It must never touch another module's schema: the
 * table is always <bh_tx_module(tx)>.inbox. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/log.h"
#include "platform/module.h"
#include "platform/uuid.h"

enum { MAX_SCHEMAS = 32, SCHEMA_MAX = BH_MODULE_NAME_MAX + 1, CONSUMER_MAX = 200 };

/* The statements per schema, built once and kept for the process lifetime:
 * prepared statements are cached by the address of their text (db.h), so
 * each schema's text needs one stable address. */
static struct {
    char schema[SCHEMA_MAX];
    char sql[160];
    char batch_sql[240];
} g_sql[MAX_SCHEMAS];
static int g_n_sql;
static pthread_mutex_t g_sql_lock = PTHREAD_MUTEX_INITIALIZER;

/* The single-row statement, or with batch the one that records an array
 * of events and returns the ones that were new. */
static const char *inbox_sql(const char *schema, bool batch)
{
    const char *sql = NULL;

    pthread_mutex_lock(&g_sql_lock);
    for (int i = 0; i < g_n_sql && sql == NULL; i++)
        if (strcmp(g_sql[i].schema, schema) == 0)
            sql = batch ? g_sql[i].batch_sql : g_sql[i].sql;
    if (sql == NULL && g_n_sql < MAX_SCHEMAS) {
        snprintf(g_sql[g_n_sql].schema, SCHEMA_MAX, "%s", schema);
        snprintf(g_sql[g_n_sql].sql, sizeof g_sql[g_n_sql].sql,
                 "INSERT INTO %s.inbox (consumer, event_id) VALUES ($1, $2)"
                 " ON CONFLICT DO NOTHING",
                 schema);
        snprintf(g_sql[g_n_sql].batch_sql, sizeof g_sql[g_n_sql].batch_sql,
                 "INSERT INTO %s.inbox (consumer, event_id)"
                 " SELECT $1, e FROM unnest($2::uuid[]) AS e"
                 " ON CONFLICT DO NOTHING RETURNING event_id::text",
                 schema);
        sql = batch ? g_sql[g_n_sql].batch_sql : g_sql[g_n_sql].sql;
        g_n_sql++;
    }
    pthread_mutex_unlock(&g_sql_lock);
    return sql;
}

int bh_inbox_seen(struct bh_tx *tx, const char *consumer, const char *event_id)
{
    const char *schema = tx ? bh_tx_module(tx) : NULL;
    const char *sql;
    PGresult *res = NULL;
    bh_uuid id;
    int rc;

    /* The schema is interpolated into SQL: a module name, checked. */
    if (!bh_module_name_valid(schema) || consumer == NULL || consumer[0] == '\0' ||
        strlen(consumer) > CONSUMER_MAX || event_id == NULL || !bh_uuid_parse(event_id, &id))
        return BH_EINVAL;
    if ((sql = inbox_sql(schema, false)) == NULL)
        return BH_ENOMEM;
    rc = bh_tx_query(tx, &res, sql, 2, (const char *const[]){consumer, id.str});
    if (rc == 0)
        rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : 1; /* 0 rows: it was there */
    PQclear(res);
    return rc;
}

int bh_inbox_seen_batch(struct bh_tx *tx, const char *consumer, int n, const char *const *event_ids,
                        bool *fresh)
{
    const char *schema = tx ? bh_tx_module(tx) : NULL;
    bh_uuid ids[BH_EVENT_BATCH_MAX];
    char array[BH_EVENT_BATCH_MAX * (BH_UUID_TEXT_SIZE) + 3];
    const char *sql;
    PGresult *res = NULL;
    size_t len = 0;
    int rc, rows;

    if (!bh_module_name_valid(schema) || consumer == NULL || consumer[0] == '\0' ||
        strlen(consumer) > CONSUMER_MAX || n < 1 || n > BH_EVENT_BATCH_MAX || event_ids == NULL ||
        fresh == NULL)
        return BH_EINVAL;
    array[len++] = '{';
    for (int i = 0; i < n; i++) {
        if (event_ids[i] == NULL || !bh_uuid_parse(event_ids[i], &ids[i]))
            return BH_EINVAL;
        len += (size_t)snprintf(array + len, sizeof array - len, "%s%s", i ? "," : "", ids[i].str);
        fresh[i] = false;
    }
    array[len++] = '}';
    array[len] = '\0';
    if ((sql = inbox_sql(schema, true)) == NULL)
        return BH_ENOMEM;
    rc = bh_tx_query(tx, &res, sql, 2, (const char *const[]){consumer, array});
    if (rc != 0) {
        PQclear(res);
        return rc;
    }
    /* The ids come back in Postgres's canonical text, as bh_uuid_parse
     * writes them. An id given twice is new at most once. */
    rows = PQntuples(res);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++)
            if (!fresh[i] && strcmp(bh_pg_str(res, r, 0), ids[i].str) == 0) {
                fresh[i] = true;
                break;
            }
    PQclear(res);
    return rows;
}
