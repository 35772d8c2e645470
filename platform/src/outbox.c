/* Publishing events (bh_outbox_publish, events.h): one INSERT into
 * platform.outbox on the caller's transaction, so the event exists exactly
 * when the change it describes commits. It must only ever INSERT: it runs as
 * whichever module role the transaction has, and module roles may do
 * nothing else in schema platform. */
#include <stdlib.h>
#include <string.h>

#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/log.h"
#include "platform/uuid.h"

enum { EVENT_TYPE_MAX = 100, AGGREGATE_MAX = 200 };

/* occurred_at is the transaction's timestamp, now(): the same instant as
 * the created_at/updated_at the change itself writes. */
static const char SQL_INSERT_EVENT[] =
    "INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)"
    " VALUES ($1, $2, $3, now(),"
    "         jsonb_set($4::jsonb, '{occurred_at}',"
    "                   to_jsonb(to_char(now() AT TIME ZONE 'UTC',"
    "                                    'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))))";

/* "task.assigned": lower-case words joined by dots. */
static bool event_type_valid(const char *t)
{
    size_t n = 0;

    if (t == NULL || !(t[0] >= 'a' && t[0] <= 'z'))
        return false;
    for (; t[n]; n++)
        if (!((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= '0' && t[n] <= '9') || t[n] == '_' ||
              (t[n] == '.' && t[n + 1] != '\0' && t[n + 1] != '.')))
            return false;
    return n <= EVENT_TYPE_MAX;
}

/* An optional UUID: NULL or "" is absent (JSON null); anything else must
 * be a UUID, normalised to lower case. */
static bool optional_uuid(const char *s, json_t **out)
{
    bh_uuid u;

    if (s == NULL || s[0] == '\0') {
        *out = json_null();
        return true;
    }
    if (!bh_uuid_parse(s, &u))
        return false;
    *out = json_string(u.str);
    return *out != NULL;
}

static json_t *nullable_string(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

int bh_outbox_publish(struct bh_tx *tx, const char *type, const char *org_id, const char *actor_id,
                      const char *aggregate_id, const json_t *data)
{
    const char *request_id, *trace_id, *aggregate;
    json_t *org = NULL, *actor = NULL, *envelope = NULL;
    char *payload = NULL;
    bh_uuid id = bh_uuid_v7();
    int rc = BH_EINVAL;

    if (tx == NULL || !event_type_valid(type) || (data != NULL && !json_is_object(data)) ||
        !optional_uuid(org_id, &org) || !optional_uuid(actor_id, &actor) ||
        (aggregate_id != NULL && strlen(aggregate_id) > AGGREGATE_MAX)) {
        bh_log(BH_LOG_ERROR, "platform", "outbox: refusing an invalid event (type %s)",
               event_type_valid(type) ? type : "invalid");
        goto out;
    }
    /* Events of one aggregate are relayed in order; without one, the org
     * orders them, and without an org each event stands alone. */
    aggregate = aggregate_id != NULL && aggregate_id[0] != '\0' ? aggregate_id
                : json_is_string(org)                           ? json_string_value(org)
                                                                : id.str;
    bh_log_context_get(&request_id, &trace_id);
    rc = BH_ENOMEM;
    /* data is borrowed: the envelope takes a reference of its own (jansson
     * counts references atomically, so a shared object is safe here). */
    envelope = json_pack("{s:s, s:s, s:n, s:O, s:O, s:o, s:{s:o, s:o}}", "id", id.str, "type", type,
                         "occurred_at", "org_id", org, "actor_id", actor, "data",
                         data ? json_incref((json_t *)data) : json_object(), "trace", "trace_id",
                         nullable_string(trace_id), "request_id", nullable_string(request_id));
    if (envelope == NULL || (payload = json_dumps(envelope, JSON_COMPACT)) == NULL)
        goto out;
    /* The row travels with the transaction's next statement or its COMMIT:
     * the caller never reads it back, and one round trip fewer shortens
     * the time its row locks are held. */
    rc = bh_tx_defer(tx, SQL_INSERT_EVENT, 4,
                     (const char *const[]){id.str, type, aggregate, payload});
    if (rc != 0)
        bh_log(BH_LOG_ERROR, "platform", "outbox: inserting %s failed: %s", type, bh_err_name(rc));
out:
    free(payload);
    json_decref(envelope);
    json_decref(org);
    json_decref(actor);
    return rc;
}

int bh_outbox_publish_take(struct bh_tx *tx, const char *type, const char *org_id,
                           const char *actor_id, const char *aggregate_id, json_t *data)
{
    if (data == NULL)
        return BH_ENOMEM;
    int rc = bh_outbox_publish(tx, type, org_id, actor_id, aggregate_id, data);
    json_decref(data);
    return rc;
}
