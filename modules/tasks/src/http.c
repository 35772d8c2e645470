/* HTTP handlers for tasks: parse and validate, authorize through auth, call
 * the service, answer. GET one task is the hottest route of the API: one
 * token check, one membership lookup, one cache read, and the cached JSON
 * goes out as it is. Never put a rule here that the service should own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/uuid.h"

/* ------------------------------------------------------- shared helpers */

int tasks__http_page_args(struct bh_req *req, int *limit, struct bh_cursor *cursor,
                          bool *has_cursor)
{
    *limit = (int)bh_req_query_long(req, "limit", 20, 1, 100);
    *has_cursor = false;
    const char *c = bh_req_query(req, "cursor");
    if (c) {
        if (bh_cursor_decode(c, cursor))
            *has_cursor = true;
        else
            bh_req_field_error(req, "cursor", "is not a cursor this API returned");
    }
    return bh_req_has_field_errors(req) ? BH_EINVAL : 0;
}

static void link_next(struct bh_req *req, const char *query, const char *cursor)
{
    struct bh_arena *a = bh_req_arena(req);
    const char *link =
        bh_arena_printf(a, "<%s?%scursor=%s>; rel=\"next\"", bh_req_path(req), query, cursor);
    if (link)
        bh_reply_header(req, "Link", link);
}

int tasks__http_reply_page(struct bh_req *req, json_t *data, const char *next_cursor,
                           const char *query)
{
    if (next_cursor)
        link_next(req, query, next_cursor);
    json_t *body = json_pack("{s:o, s:o}", "data", data, "next_cursor",
                             next_cursor ? json_string(next_cursor) : json_null());
    if (!body)
        return BH_ENOMEM;
    return bh_reply_json(req, 200, body);
}

static void set_etag(struct bh_req *req, int64_t version)
{
    char etag[32];
    tasks__etag_format(etag, sizeof etag, version);
    bh_reply_header(req, "ETag", etag);
}

/* A UUID-valued body field, lower-cased into the arena; a field error when
 * it is not a UUID. NULL stays NULL (JSON null or absent). */
static const char *uuid_field(struct bh_req *req, const char *field, const char *value)
{
    bh_uuid u;
    if (!value)
        return NULL;
    if (!bh_uuid_parse(value, &u)) {
        bh_req_field_error(req, field, "must be a UUID");
        return NULL;
    }
    return bh_arena_strdup(bh_req_arena(req), u.str);
}

/* Turns a service's refusal into its problem. */
static int reply_fault(struct bh_req *req, int rc, const struct tasks__fault *fault)
{
    if (rc == BH_ELIMIT) {
        const char *detail = bh_arena_printf(
            bh_req_arena(req), "The organization's plan allows %lld tasks and it has %lld.",
            (long long)fault->limit, (long long)fault->current);
        return bh_reply_problem(req, 402, "plan_limit_exceeded", detail,
                                json_pack("{s:s, s:I, s:I}", "resource", "tasks", "limit",
                                          (json_int_t)fault->limit, "usage",
                                          (json_int_t)fault->current));
    }
    if (rc == BH_EUNPROCESSABLE && fault->field) {
        bh_req_field_error(req, fault->field, "%s", fault->detail ? fault->detail : "is invalid");
        if (fault->code)
            return bh_reply_problem(req, 422, fault->code, fault->detail, NULL);
        return bh_reply_field_errors(req);
    }
    return rc;
}

/* The fields a task body may carry (create and PATCH alike). */
struct task_body {
    struct tasks__task_input in;
    const char *project_raw, *assignee_raw;
};

static int read_task_body(struct bh_req *req, struct task_body *b, bool create)
{
    struct tasks__task_input *in = &b->in;
    const struct bh_json_field fields[] = {
        {"title", BH_JSON_T_LINE, &in->title, 1, 200, create, &in->has_title},
        BH_JSON_NSTRING("description", &in->description, 0, 10000, &in->has_description),
        {"status", BH_JSON_T_STRING, &in->status, 1, 32, false, &in->has_status},
        {"priority", BH_JSON_T_STRING, &in->priority, 1, 32, false, &in->has_priority},
        BH_JSON_NSTRING("project_id", &b->project_raw, 1, 64, &in->has_project),
        BH_JSON_NSTRING("assignee_id", &b->assignee_raw, 1, 64, &in->has_assignee),
        BH_JSON_NSTRING("due_at", &in->due_at, 1, 64, &in->has_due),
        {0},
    };
    /* Every problem is reported at once: read errors and the checks below. */
    bh_json_read(req, bh_req_json(req), fields);
    /* A new task starts as todo: status is only for PATCH. */
    if (create && in->has_status)
        bh_req_field_error(req, "status", "is not a known field (a new task is todo)");
    if (in->has_status && in->status && !tasks__status_valid(in->status))
        bh_req_field_error(req, "status", "must be one of todo, in_progress, done");
    if (in->has_priority && in->priority && !tasks__priority_valid(in->priority))
        bh_req_field_error(req, "priority", "must be one of low, normal, high, urgent");
    if (in->due_at && !bh_rfc3339_valid(in->due_at))
        bh_req_field_error(req, "due_at", "must be an RFC 3339 date-time");
    in->project_id = uuid_field(req, "project_id", b->project_raw);
    in->assignee_id = uuid_field(req, "assignee_id", b->assignee_raw);
    return bh_req_has_field_errors(req) ? BH_EINVAL : 0;
}

int tasks__http_require_member(struct bh_req *req, const struct auth_principal **p)
{
    return auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_MEMBER, p);
}

int tasks__http_path_id(struct bh_req *req, bh_uuid *id)
{
    const char *s = bh_req_param(req, "id");
    return s && bh_uuid_parse(s, id) ? 0 : BH_ENOTFOUND;
}

/* ------------------------------------------------------------- handlers */

int tasks__http_task_create(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    struct task_body b = {0};
    if (read_task_body(req, &b, true) != 0)
        return bh_reply_field_errors(req);
    struct tasks__task t;
    struct tasks__fault fault = {0};
    rc = tasks__task_create(p, &b.in, bh_req_arena(req), &t, &fault);
    if (rc != 0)
        return reply_fault(req, rc, &fault);
    bh_reply_header(req, "Location",
                    bh_arena_printf(bh_req_arena(req), "/v1/orgs/%s/tasks/%s", t.org_id, t.id));
    set_etag(req, t.version);
    return bh_reply_json(req, 201, tasks__task_json(&t));
}

int tasks__http_task_get(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    bh_uuid id;
    if ((rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    struct tasks__task_view v;
    rc = tasks__task_read(bh_req_arena(req), p->org_id.str, id.str, &v);
    if (rc != 0)
        return rc;
    set_etag(req, v.version);
    bh_reply_header(req, "X-Cache", tasks__cache_result_name(v.cache));
    const char *inm = bh_req_header(req, "If-None-Match");
    if (inm && tasks__etag_matches(inm, v.version, true))
        return bh_reply_empty(req, 304);
    return bh_reply_raw(req, 200, "application/json", v.json, v.len);
}

int tasks__http_task_patch(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    bh_uuid id;
    if ((rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    struct task_body b = {0};
    if (read_task_body(req, &b, false) != 0)
        return bh_reply_field_errors(req);
    struct tasks__task t;
    struct tasks__fault fault = {0};
    rc = tasks__task_update(p, id.str, &b.in, bh_req_header(req, "If-Match"), bh_req_arena(req), &t,
                            &fault);
    if (rc != 0)
        return reply_fault(req, rc, &fault);
    set_etag(req, t.version);
    return bh_reply_json(req, 200, tasks__task_json(&t));
}

int tasks__http_task_delete(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    bh_uuid id;
    if ((rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    rc = tasks__task_delete(p, id.str, bh_req_header(req, "If-Match"), bh_req_arena(req));
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

/* Appends "name=value&" (value percent-encoded) to the next page's query. */
static char *query_add(struct bh_arena *a, char *query, const char *name, const char *value)
{
    const char *encoded = value && query ? tasks__url_encode(a, value) : NULL;
    if (!value || !query)
        return query;
    return encoded ? bh_arena_printf(a, "%s%s=%s&", query, name, encoded) : NULL;
}

int tasks__http_task_list(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    struct bh_arena *a = bh_req_arena(req);
    struct tasks__task_filter f = {.org_id = p->org_id.str};
    struct bh_cursor cursor;
    bool has_cursor = false;
    tasks__http_page_args(req, &f.limit, &cursor, &has_cursor);
    f.after = has_cursor ? &cursor : NULL;

    const char *status = bh_req_query(req, "status");
    if (status && !tasks__status_valid(status))
        bh_req_field_error(req, "status", "must be one of todo, in_progress, done");
    f.status = status;
    const char *assignee = bh_req_query(req, "assignee_id");
    if (assignee && strcmp(assignee, "me") == 0)
        f.assignee_id = p->user_id.str;
    else
        f.assignee_id = uuid_field(req, "assignee_id", assignee);
    const char *project = bh_req_query(req, "project_id");
    f.project_id = uuid_field(req, "project_id", project);
    const char *q = bh_req_query(req, "q");
    if (q && (bh_utf8_len(q) < 1 || bh_utf8_len(q) > 200))
        bh_req_field_error(req, "q", "must be 1 to 200 characters");
    else if (q)
        f.title_like = tasks__like_pattern(a, q);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);

    struct tasks__task *tasks = NULL;
    int n = 0;
    const char *next = NULL;
    rc = tasks__task_list(a, &f, &tasks, &n, &next);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, tasks__task_json(&tasks[i]));
    char *query = bh_arena_strdup(a, "");
    query = query_add(a, query, "status", status);
    query = query_add(a, query, "assignee_id", assignee);
    query = query_add(a, query, "project_id", project);
    query = query_add(a, query, "q", q);
    query = bh_arena_printf(a, "%slimit=%d&", query ? query : "", f.limit);
    return tasks__http_reply_page(req, data, next, query ? query : "");
}
