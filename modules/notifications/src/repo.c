/* All of the notifications module's SQL, as named parameterized statements
 * on its own schema. Functions taking a tx run on the caller's transaction;
 * the others run one statement on the module's pool. Nothing here decides
 * what to notify: that is service.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"

#define NOTIFICATION_COLUMNS                                                                       \
    "id, type, title, body, data::text, notifications.rfc3339(read_at), "                          \
    "notifications.rfc3339(created_at)"

static const char SQL_PREFS_LOAD[] =
    "SELECT type, channel, enabled FROM notifications.preferences WHERE user_id = $1";

/* Every (type, channel) is written, so the stored set is the whole document. */
static const char SQL_PREFS_UPSERT[] =
    "INSERT INTO notifications.preferences (user_id, type, channel, enabled) "
    "SELECT $1, t, c, e FROM unnest($2::text[], $3::text[], $4::boolean[]) AS x(t, c, e) "
    "ON CONFLICT (user_id, type, channel) "
    "DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()";

static const char SQL_INSERT[] = "INSERT INTO notifications.notifications "
                                 "(id, user_id, org_id, type, title, body, data, event_id) "
                                 "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) "
                                 "RETURNING notifications.rfc3339(created_at)";

static const char SQL_INSERT_DELIVERY[] =
    "INSERT INTO notifications.deliveries (id, user_id, event_id, notification_id, type, "
    "to_address, to_name, subject, text_body, html_body) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

static const char SQL_UNSENT_FOR_EVENT[] =
    "SELECT id FROM notifications.deliveries WHERE event_id = $1 AND status = 'pending'";

/* Keyset pagination: the cursor is the (created_at, id) of the last row
 * seen; the first page starts after ('infinity', max uuid). */
static const char SQL_LIST[] =
    "SELECT " NOTIFICATION_COLUMNS " FROM notifications.notifications "
    "WHERE user_id = $1 AND (created_at, id) < ($2::timestamptz, $3::uuid) "
    "ORDER BY created_at DESC, id DESC LIMIT $4";

static const char SQL_LIST_UNREAD[] =
    "SELECT " NOTIFICATION_COLUMNS " FROM notifications.notifications "
    "WHERE user_id = $1 AND read_at IS NULL AND (created_at, id) < ($2::timestamptz, $3::uuid) "
    "ORDER BY created_at DESC, id DESC LIMIT $4";

/* The newest of those after the anchor, newest first (the caller replays
 * them in reverse). An id that is not the user's gives no anchor: no rows. */
static const char SQL_SINCE[] =
    "SELECT " NOTIFICATION_COLUMNS " FROM notifications.notifications "
    "WHERE user_id = $1 AND (created_at, id) > "
    "(SELECT created_at, id FROM notifications.notifications WHERE id = $2 AND user_id = $1) "
    "ORDER BY created_at DESC, id DESC LIMIT $3";

static const char SQL_MARK_READ[] =
    "UPDATE notifications.notifications SET read_at = coalesce(read_at, now()) "
    "WHERE id = $1 AND user_id = $2";

static const char SQL_MARK_ALL_READ[] = "UPDATE notifications.notifications SET read_at = now() "
                                        "WHERE user_id = $1 AND read_at IS NULL";

static const char SQL_CLAIM_DELIVERY[] =
    "UPDATE notifications.deliveries "
    "SET claimed_until = now() + make_interval(secs => $2::int), updated_at = now() "
    "WHERE id = $1 AND status <> 'sent' AND (claimed_until IS NULL OR claimed_until < now()) "
    "RETURNING id, to_address, to_name, subject, text_body, html_body, attempts, "
    "floor(extract(epoch FROM created_at))::bigint";

static const char SQL_DELIVERY_STATUS[] =
    "SELECT status FROM notifications.deliveries WHERE id = $1";

static const char SQL_DELIVERY_SENT[] =
    "UPDATE notifications.deliveries SET status = 'sent', transport = $2, "
    "attempts = attempts + 1, last_error = NULL, claimed_until = NULL, sent_at = now(), "
    "updated_at = now() WHERE id = $1";

static const char SQL_DELIVERY_FAILED[] =
    "UPDATE notifications.deliveries SET "
    "status = CASE WHEN $3::boolean THEN 'failed' ELSE status END, "
    "attempts = attempts + $4::int, last_error = left($2, 500), claimed_until = NULL, "
    "updated_at = now() WHERE id = $1";

int notifications__repo_prefs_load(struct bh_tx *tx, const char *user_id,
                                   struct notifications__prefs *out)
{
    PGresult *r = NULL;
    const char *params[] = {user_id};
    notifications__prefs_defaults(out);
    int rc = bh_query(tx, &r, SQL_PREFS_LOAD, 1, params);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        int t = notifications__type_from_name(bh_pg_str(r, i, 0));
        int c = notifications__channel_from_name(bh_pg_str(r, i, 1));
        if (t >= 0 && c >= 0) /* a type dropped from the code keeps its row, unused */
            out->on[t][c] = strcmp(bh_pg_str(r, i, 2), "t") == 0;
    }
    PQclear(r);
    return 0;
}

int notifications__repo_prefs_replace(struct bh_tx *tx, const char *user_id,
                                      const struct notifications__prefs *p)
{
    /* Postgres array literals; every element is one of our own names. */
    char types[512] = "{", channels[256] = "{", enabled[128] = "{";
    for (int t = 0; t < NOTIF_N_TYPES; t++) {
        for (int c = 0; c < NOTIF_N_CHANNELS; c++) {
            const char *sep = t + c > 0 ? "," : "";
            size_t lt = strlen(types), lc = strlen(channels), le = strlen(enabled);
            snprintf(types + lt, sizeof types - lt, "%s\"%s\"", sep,
                     notifications__type_name((enum notifications__type)t));
            snprintf(channels + lc, sizeof channels - lc, "%s%s", sep,
                     notifications__channel_name((enum notifications__channel)c));
            snprintf(enabled + le, sizeof enabled - le, "%s%s", sep, p->on[t][c] ? "t" : "f");
        }
    }
    strcat(types, "}");
    strcat(channels, "}");
    strcat(enabled, "}");
    const char *params[] = {user_id, types, channels, enabled};
    return bh_tx_query(tx, NULL, SQL_PREFS_UPSERT, 4, params);
}

int notifications__repo_insert(struct bh_tx *tx, const struct notifications__new *n,
                               char **created_at)
{
    char *data = json_dumps(n->data, JSON_COMPACT);
    if (!data)
        return BH_ENOMEM;
    const char *params[] = {n->id.str, n->user_id, n->org_id, n->type,
                            n->title,  n->body,    data,      n->event_id};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_INSERT, 8, params);
    free(data);
    if (rc != 0)
        return rc;
    *created_at = strdup(bh_pg_str(r, 0, 0));
    PQclear(r);
    return *created_at ? 0 : BH_ENOMEM;
}

int notifications__repo_insert_delivery(struct bh_tx *tx, const struct notifications__delivery *d)
{
    const char *params[] = {d->id.str,    d->user_id,    d->event_id, d->notification_id,
                            d->type,      d->to_address, d->to_name,  d->subject,
                            d->text_body, d->html_body};
    return bh_tx_query(tx, NULL, SQL_INSERT_DELIVERY, 10, params);
}

/* ---- rows as structs: nothing past this file sees libpq ---- */

void notifications__rows_release(struct notifications__rows *rows)
{
    for (size_t i = 0; rows->v && i < rows->n; i++) {
        free(rows->v[i].title);
        free(rows->v[i].body);
        free(rows->v[i].data);
    }
    free(rows->v);
    rows->v = NULL;
    rows->n = 0;
}

/* Columns of NOTIFICATION_COLUMNS, in order. */
enum { NCOL_ID, NCOL_TYPE, NCOL_TITLE, NCOL_BODY, NCOL_DATA, NCOL_READ_AT, NCOL_CREATED_AT };

/* r's rows into *out (which owns copies). Clears r. */
static int rows_from(PGresult *r, struct notifications__rows *out)
{
    int n = PQntuples(r);
    out->n = 0;
    out->v = n > 0 ? calloc((size_t)n, sizeof *out->v) : NULL;
    if (n > 0 && !out->v) {
        PQclear(r);
        return BH_ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct notifications__row *row = &out->v[out->n++];
        bh_uuid_parse(bh_pg_str(r, i, NCOL_ID), &row->id);
        snprintf(row->type, sizeof row->type, "%s", bh_pg_str(r, i, NCOL_TYPE));
        row->title = strdup(bh_pg_str(r, i, NCOL_TITLE));
        row->body = strdup(bh_pg_str(r, i, NCOL_BODY));
        row->data = strdup(bh_pg_str(r, i, NCOL_DATA));
        snprintf(row->read_at, sizeof row->read_at, "%s",
                 bh_pg_null(r, i, NCOL_READ_AT) ? "" : bh_pg_str(r, i, NCOL_READ_AT));
        snprintf(row->created_at, sizeof row->created_at, "%s", bh_pg_str(r, i, NCOL_CREATED_AT));
        if (!row->title || !row->body || !row->data) {
            rc = BH_ENOMEM;
            break;
        }
    }
    PQclear(r);
    if (rc != 0)
        notifications__rows_release(out);
    return rc;
}

int notifications__repo_unsent_for_event(struct bh_tx *tx, const char *event_id, bh_uuid **ids,
                                         size_t *n)
{
    const char *params[] = {event_id};
    PGresult *r = NULL;
    *ids = NULL;
    *n = 0;
    int rc = bh_tx_query(tx, &r, SQL_UNSENT_FOR_EVENT, 1, params);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(*ids = calloc((size_t)rows, sizeof **ids)))
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++)
        if (bh_uuid_parse(bh_pg_str(r, i, 0), &(*ids)[*n]))
            (*n)++;
    PQclear(r);
    return rc;
}

int notifications__repo_list(const char *user_id, bool unread_only, const struct bh_cursor *after,
                             int limit, struct notifications__rows *out)
{
    char n[16];
    snprintf(n, sizeof n, "%d", limit + 1);
    const char *params[] = {user_id, after ? after->created_at : "infinity",
                            after ? after->id : "ffffffff-ffff-ffff-ffff-ffffffffffff", n};
    PGresult *r = NULL;
    int rc = bh_db_query(&r, unread_only ? SQL_LIST_UNREAD : SQL_LIST, 4, params);
    return rc != 0 ? rc : rows_from(r, out);
}

int notifications__repo_since(const char *user_id, const char *last_id, int limit,
                              struct notifications__rows *out)
{
    char n[16];
    snprintf(n, sizeof n, "%d", limit);
    const char *params[] = {user_id, last_id, n};
    PGresult *r = NULL;
    int rc = bh_db_query(&r, SQL_SINCE, 3, params);
    return rc != 0 ? rc : rows_from(r, out);
}

int notifications__repo_mark_read(const char *user_id, const char *id)
{
    PGresult *r = NULL;
    const char *params[] = {id, user_id};
    int rc = bh_db_query(&r, SQL_MARK_READ, 2, params);
    if (rc != 0)
        return rc;
    bool found = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return found ? 0 : BH_ENOTFOUND;
}

int notifications__repo_mark_all_read(const char *user_id, long *count)
{
    PGresult *r = NULL;
    const char *params[] = {user_id};
    int rc = bh_db_query(&r, SQL_MARK_ALL_READ, 1, params);
    if (rc != 0)
        return rc;
    *count = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

void notifications__claimed_release(struct notifications__claimed *d)
{
    free(d->to_address);
    free(d->to_name);
    free(d->subject);
    free(d->text);
    free(d->html);
    memset(d, 0, sizeof *d);
}

/* Columns of SQL_CLAIM_DELIVERY's RETURNING, in order. */
enum {
    DCOL_ID,
    DCOL_TO_ADDRESS,
    DCOL_TO_NAME,
    DCOL_SUBJECT,
    DCOL_TEXT,
    DCOL_HTML,
    DCOL_ATTEMPTS,
    DCOL_CREATED_EPOCH
};

int notifications__repo_claim_delivery(const char *id, int lease_s,
                                       struct notifications__claimed *out, bool *claimed,
                                       bool *busy)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", lease_s);
    const char *params[] = {id, lease};
    PGresult *r = NULL;
    *busy = *claimed = false;
    memset(out, 0, sizeof *out);
    int rc = bh_db_query(&r, SQL_CLAIM_DELIVERY, 2, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) > 0) {
        bh_uuid_parse(bh_pg_str(r, 0, DCOL_ID), &out->id);
        out->to_address = strdup(bh_pg_str(r, 0, DCOL_TO_ADDRESS));
        out->to_name = strdup(bh_pg_str(r, 0, DCOL_TO_NAME));
        out->subject = strdup(bh_pg_str(r, 0, DCOL_SUBJECT));
        out->text = strdup(bh_pg_str(r, 0, DCOL_TEXT));
        out->html = strdup(bh_pg_str(r, 0, DCOL_HTML));
        out->attempts = (int)strtol(bh_pg_str(r, 0, DCOL_ATTEMPTS), NULL, 10);
        out->created_epoch = strtoll(bh_pg_str(r, 0, DCOL_CREATED_EPOCH), NULL, 10);
        PQclear(r);
        if (!out->to_address || !out->to_name || !out->subject || !out->text || !out->html) {
            notifications__claimed_release(out);
            return BH_ENOMEM; /* the lease runs out and the job comes back */
        }
        *claimed = true;
        return 0;
    }
    PQclear(r);
    /* Not claimed: sent already, gone, or someone holds the lease. */
    PGresult *st = NULL;
    rc = bh_db_query(&st, SQL_DELIVERY_STATUS, 1, params);
    if (rc != 0)
        return rc;
    *busy = PQntuples(st) > 0 && strcmp(bh_pg_str(st, 0, 0), "sent") != 0;
    PQclear(st);
    return 0;
}

int notifications__repo_delivery_sent(const char *id, const char *transport)
{
    const char *params[] = {id, transport};
    return bh_db_query(NULL, SQL_DELIVERY_SENT, 2, params);
}

int notifications__repo_delivery_failed(const char *id, const char *error, bool attempted,
                                        bool final)
{
    const char *params[] = {id, error, final ? "true" : "false", attempted ? "1" : "0"};
    return bh_db_query(NULL, SQL_DELIVERY_FAILED, 4, params);
}
