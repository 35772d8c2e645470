/* The notifications HTTP API, all under /v1/me: the caller's inbox, their
 * preferences and their live stream. Handlers parse, authenticate, call
 * the repo or the stream hub, and reply; a caller only ever sees and
 * touches their own notifications (another user's id is a 404). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/page.h"

/* A POST without a body schema still refuses fields it does not know. */
static int no_fields(struct bh_req *req)
{
    static const struct bh_json_field none[] = {{0}};
    json_t *body = bh_req_json(req);
    return body && bh_json_read(req, body, none) != 0 ? BH_EINVAL : 0;
}

int notifications__http_list(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;

    const char *unread = bh_req_query(req, "unread");
    bool unread_only = false;
    struct bh_cursor after;
    struct bh_page page;
    if (unread && strcmp(unread, "true") == 0)
        unread_only = true;
    else if (unread && strcmp(unread, "false") != 0)
        bh_req_field_error(req, "unread", "must be true or false");
    if (bh_page_args(req, &page) == 0 && page.cursor && !bh_cursor_decode(page.cursor, &after))
        bh_page_bad_cursor(req);
    const char *cursor = page.cursor;
    int limit = page.limit;
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);

    struct notifications__rows rows = {0};
    rc = notifications__repo_list(me->user_id.str, unread_only, cursor ? &after : NULL, limit,
                                  &rows);
    if (rc != 0)
        return rc;
    size_t shown = rows.n < (size_t)limit ? rows.n : (size_t)limit;
    bool more = rows.n > (size_t)limit;
    json_t *data = json_array();
    for (size_t i = 0; data && i < shown; i++)
        if (json_array_append_new(data, notifications__row_json(&rows.v[i])) != 0) {
            json_decref(data);
            data = NULL;
        }
    char *next = more ? bh_cursor_encode(bh_req_arena(req), rows.v[shown - 1].created_at,
                                         rows.v[shown - 1].id.str)
                      : NULL;
    notifications__rows_release(&rows);
    if (!data || (more && !next)) {
        json_decref(data);
        return BH_ENOMEM;
    }
    static const char *const filters[] = {"unread", NULL};
    return bh_reply_page(req, &page, data, next, filters);
}

int notifications__http_mark_read(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    if ((rc = no_fields(req)) != 0)
        return bh_reply_field_errors(req);
    bh_uuid id;
    if (!bh_uuid_parse(bh_req_param(req, "id"), &id))
        return BH_ENOTFOUND;
    rc = notifications__repo_mark_read(me->user_id.str, id.str);
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

int notifications__http_mark_all_read(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    if ((rc = no_fields(req)) != 0)
        return bh_reply_field_errors(req);
    long count = 0;
    if ((rc = notifications__repo_mark_all_read(me->user_id.str, &count)) != 0)
        return rc;
    char n[24];
    snprintf(n, sizeof n, "%ld", count);
    bh_reply_header(req, "Notifications-Marked", n);
    return bh_reply_empty(req, 204);
}

static int reply_prefs(struct bh_req *req, const struct notifications__prefs *p)
{
    json_t *doc = notifications__prefs_to_json(p);
    if (!doc)
        return BH_ENOMEM;
    return bh_reply_json(req, 200, json_pack("{s:o}", "preferences", doc));
}

int notifications__http_get_prefs(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    struct notifications__prefs p;
    if ((rc = notifications__repo_prefs_load(NULL, me->user_id.str, &p)) != 0)
        return rc;
    return reply_prefs(req, &p);
}

static void field_error(void *arg, const char *field, const char *message)
{
    bh_req_field_error(arg, field, "%s", message);
}

int notifications__http_put_prefs(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    json_t *doc = NULL;
    const struct bh_json_field fields[] = {BH_JSON_ANY("preferences", &doc, true), {0}};
    struct notifications__prefs p;
    if (bh_json_read(req, bh_req_json(req), fields) != 0 ||
        notifications__prefs_parse(doc, &p, field_error, req) != 0)
        return bh_reply_field_errors(req);
    struct bh_tx *tx = NULL;
    if ((rc = bh_tx_begin(&tx)) != 0)
        return rc;
    rc = notifications__repo_prefs_replace(tx, me->user_id.str, &p);
    if (rc == 0)
        rc = bh_tx_commit(tx);
    else
        bh_tx_rollback(tx);
    return rc != 0 ? rc : reply_prefs(req, &p);
}

int notifications__http_stream(struct bh_req *req)
{
    const struct auth_principal *me;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    /* EventSource sends Last-Event-ID when it reconnects; the query
     * parameter is for clients that cannot set headers. */
    const char *last = bh_req_header(req, "Last-Event-ID");
    const char *field = "Last-Event-ID";
    if (!last || !*last) {
        last = bh_req_query(req, "last_event_id");
        field = "last_event_id";
    }
    bh_uuid last_id;
    if (last && *last && !bh_uuid_parse(last, &last_id)) {
        bh_req_field_error(req, field, "must be the id of a notification");
        return bh_reply_field_errors(req);
    }
    return notifications__stream_serve(req, last && *last ? last_id.str : NULL);
}
