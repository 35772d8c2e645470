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
#include "platform/outbox.h"
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

/* Many events in one statement: $1 is a JSON array of {id, type,
 * aggregate_id, payload}, inserted in array order (the outbox's seq order),
 * each payload given the occurred_at SQL_INSERT_EVENT gives it. One
 * statement also fires the relay's wake-up trigger once. */
static const char SQL_INSERT_EVENTS[] =
    "INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)"
    " SELECT (e.v->>'id')::uuid, e.v->>'type', e.v->>'aggregate_id', now(),"
    "        jsonb_set(e.v->'payload', '{occurred_at}',"
    "                  to_jsonb(to_char(now() AT TIME ZONE 'UTC',"
    "                                   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))"
    "   FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(v, n)"
    "  ORDER BY e.n";

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

/* Builds the envelope of one event, its id and the aggregate its order is
 * kept in (aggregate: borrowed from e or id). NULL when e is invalid
 * (logged) or on OOM (*rc tells which). */
static json_t *envelope_new(const struct bh_outbox_event *e, bh_uuid *id, const char **aggregate,
                            int *rc)
{
    json_t *org = NULL, *actor = NULL, *envelope = NULL;

    *id = bh_uuid_v7();
    *rc = BH_EINVAL;
    if (!event_type_valid(e->type) || (e->data != NULL && !json_is_object(e->data)) ||
        !optional_uuid(e->org_id, &org) || !optional_uuid(e->actor_id, &actor) ||
        (e->aggregate_id != NULL && strlen(e->aggregate_id) > AGGREGATE_MAX)) {
        bh_log(BH_LOG_ERROR, "platform", "outbox: refusing an invalid event (type %s)",
               event_type_valid(e->type) ? e->type : "invalid");
        goto out;
    }
    /* Events of one aggregate are relayed in order; without one, the org
     * orders them, and without an org each event stands alone. */
    *aggregate = e->aggregate_id != NULL && e->aggregate_id[0] != '\0' ? e->aggregate_id
                 : json_is_string(org)                                 ? json_string_value(org)
                                                                       : id->str;
    *rc = BH_ENOMEM;
    /* data is borrowed: the envelope takes a reference of its own (jansson
     * counts references atomically, so a shared object is safe here). */
    envelope =
        json_pack("{s:s, s:s, s:n, s:O, s:O, s:o, s:{s:o, s:o}}", "id", id->str, "type", e->type,
                  "occurred_at", "org_id", org, "actor_id", actor, "data",
                  e->data ? json_incref((json_t *)e->data) : json_object(), "trace", "trace_id",
                  nullable_string(e->trace_id), "request_id", nullable_string(e->request_id));
    if (envelope != NULL)
        *rc = 0;
out:
    json_decref(org);
    json_decref(actor);
    return envelope;
}

int bh_outbox_publish(struct bh_tx *tx, const char *type, const char *org_id, const char *actor_id,
                      const char *aggregate_id, const json_t *data)
{
    struct bh_outbox_event e = {.type = type,
                                .org_id = org_id,
                                .actor_id = actor_id,
                                .aggregate_id = aggregate_id,
                                .data = data};
    const char *aggregate = NULL;
    char *payload = NULL;
    bh_uuid id;
    int rc = BH_EINVAL;

    if (tx == NULL)
        return BH_EINVAL;
    bh_log_context_get(&e.request_id, &e.trace_id);
    json_t *envelope = envelope_new(&e, &id, &aggregate, &rc);
    if (envelope == NULL)
        return rc;
    rc = BH_ENOMEM;
    if ((payload = json_dumps(envelope, JSON_COMPACT)) == NULL)
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
    return rc;
}

int bh_outbox_publish_many(struct bh_tx *tx, const struct bh_outbox_event *events, int n)
{
    json_t *rows = NULL;
    char *text = NULL;
    int rc = BH_EINVAL;

    if (tx == NULL || events == NULL || n < 1 || n > BH_OUTBOX_BATCH_MAX)
        return BH_EINVAL;
    if ((rows = json_array()) == NULL)
        return BH_ENOMEM;
    for (int i = 0; i < n; i++) {
        const char *aggregate = NULL;
        bh_uuid id;
        json_t *envelope = envelope_new(&events[i], &id, &aggregate, &rc);
        if (envelope == NULL)
            goto out;
        rc = BH_ENOMEM;
        if (json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:o}", "id", id.str, "type",
                                                  events[i].type, "aggregate_id", aggregate,
                                                  "payload", envelope)) != 0)
            goto out;
    }
    rc = BH_ENOMEM;
    if ((text = json_dumps(rows, JSON_COMPACT)) == NULL)
        goto out;
    rc = bh_tx_defer(tx, SQL_INSERT_EVENTS, 1, (const char *const[]){text});
    if (rc != 0)
        bh_log(BH_LOG_ERROR, "platform", "outbox: inserting %d events failed: %s", n,
               bh_err_name(rc));
out:
    free(text);
    json_decref(rows);
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
