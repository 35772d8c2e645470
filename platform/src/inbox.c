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

/* The statement per schema, built once and kept for the process lifetime:
 * prepared statements are cached by the address of their text (db.h), so
 * each schema's text needs one stable address. */
static struct {
    char schema[SCHEMA_MAX];
    char sql[160];
} g_sql[MAX_SCHEMAS];
static int g_n_sql;
static pthread_mutex_t g_sql_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *inbox_sql(const char *schema)
{
    const char *sql = NULL;

    pthread_mutex_lock(&g_sql_lock);
    for (int i = 0; i < g_n_sql && sql == NULL; i++)
        if (strcmp(g_sql[i].schema, schema) == 0)
            sql = g_sql[i].sql;
    if (sql == NULL && g_n_sql < MAX_SCHEMAS) {
        snprintf(g_sql[g_n_sql].schema, SCHEMA_MAX, "%s", schema);
        snprintf(g_sql[g_n_sql].sql, sizeof g_sql[g_n_sql].sql,
                 "INSERT INTO %s.inbox (consumer, event_id) VALUES ($1, $2)"
                 " ON CONFLICT DO NOTHING",
                 schema);
        sql = g_sql[g_n_sql++].sql;
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
    if ((sql = inbox_sql(schema)) == NULL)
        return BH_ENOMEM;
    rc = bh_tx_query(tx, &res, sql, 2, (const char *const[]){consumer, id.str});
    if (rc == 0)
        rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : 1; /* 0 rows: it was there */
    PQclear(res);
    return rc;
}
