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

int tasks__http_page_args(struct bh_req *req, struct bh_page *page, struct bh_cursor *cursor,
                          bool *has_cursor)
{
    *has_cursor = false;
    int rc = bh_page_args(req, page);
    if (rc == 0 && page->cursor) {
        if (bh_cursor_decode(page->cursor, cursor))
            *has_cursor = true;
        else
            rc = bh_page_bad_cursor(req);
    }
    return rc;
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

/* Turns a service's refusal into its problem (the platform's one shape). */
static int reply_fault(struct bh_req *req, int rc, const struct bh_refusal *fault)
{
    if (rc == BH_ELIMIT || (rc == BH_EUNPROCESSABLE && fault->field))
        return bh_reply_refusal(req, rc, fault, NULL);
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
    struct bh_refusal fault = {0};
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
    return bh_reply_bytes(req, 200, "application/json", v.json, v.len); /* in the arena */
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
    struct bh_refusal fault = {0};
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

/* The query parameters a task list filters by, echoed in its Link. */
static const char *const list_filters[] = {"status", "assignee_id", "project_id", "q", NULL};

/* Reads the list's filters into f; a bad one is a field error on req. */
static void read_filter(struct bh_req *req, const struct auth_principal *p,
                        struct tasks__task_filter *f)
{
    const char *status = bh_req_query(req, "status");
    if (status && !tasks__status_valid(status))
        bh_req_field_error(req, "status", "must be one of todo, in_progress, done");
    f->status = status;
    const char *assignee = bh_req_query(req, "assignee_id");
    if (assignee && strcmp(assignee, "me") == 0)
        f->assignee_id = p->user_id.str;
    else
        f->assignee_id = uuid_field(req, "assignee_id", assignee);
    f->project_id = uuid_field(req, "project_id", bh_req_query(req, "project_id"));
    const char *q = bh_req_query(req, "q");
    if (q && (bh_utf8_len(q) < 1 || bh_utf8_len(q) > 200))
        bh_req_field_error(req, "q", "must be 1 to 200 characters");
    else if (q)
        f->title_like = tasks__like_pattern(bh_req_arena(req), q);
}

/* A cached first page is "<next cursor>\n<body>": the body exactly as
 * bh_page_render() made it, sent again as it is (no parsing, no copy), and
 * the cursor for the Link header, which is built from each request (two
 * queries that share a page, such as "assignee_id=me" and the caller's own
 * id, echo their own filters). False, with nothing sent, when the entry is
 * not of this form. */
static bool reply_cached_page(struct bh_req *req, const struct bh_page *pg, const char *cached,
                              size_t cached_len, int *rc)
{
    const char *nl = memchr(cached, '\n', cached_len);
    if (!nl || nl + 1 == cached + cached_len || nl[1] != '{')
        return false;
    const char *next =
        nl > cached ? bh_arena_strndup(bh_req_arena(req), cached, (size_t)(nl - cached)) : NULL;
    if (nl > cached && !next) {
        *rc = BH_ENOMEM;
        return true;
    }
    bh_reply_header(req, "X-Cache", "hit");
    *rc = bh_reply_page_body(req, pg, nl + 1, cached_len - (size_t)(nl + 1 - cached), next,
                             list_filters);
    return true;
}

/* Puts a first page read from Postgres in the org's list cache (best effort). */
static void fill_list_cache(struct bh_arena *a, const char *org_id, const char *version,
                            const char *key, const char *body, size_t len, const char *next)
{
    const char *entry = bh_arena_printf(a, "%s\n%.*s", next ? next : "", (int)len, body);
    if (entry)
        tasks__list_cache_fill(org_id, version, key, entry, strlen(entry));
}

/* A page of tasks as bh_reply_page() sends it, in the arena; NULL on OOM. */
static const char *render_page(struct bh_arena *a, const struct tasks__task *tasks, int n,
                               const char *next, size_t *len)
{
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, tasks__task_json(&tasks[i]));
    return bh_page_render(a, data, next, len);
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
    struct bh_page pg;
    tasks__http_page_args(req, &pg, &cursor, &has_cursor);
    f.limit = pg.limit;
    f.after = has_cursor ? &cursor : NULL;

    read_filter(req, p, &f);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);

    /* First pages come from the org's list cache when it holds them. The
     * key is the query with "me" resolved: two members' "assignee_id=me"
     * are different pages. */
    char version[33];
    const char *key = NULL, *cached = NULL;
    size_t cached_len = 0;
    int cache_rc = BH_EUNAVAILABLE;
    if (!f.after) {
        key = bh_arena_printf(a, "%s|%s|%s|%s|%d", f.status ? f.status : "",
                              f.assignee_id ? f.assignee_id : "", f.project_id ? f.project_id : "",
                              f.title_like ? f.title_like : "", f.limit);
        if (!key)
            return BH_ENOMEM;
        cache_rc = tasks__list_cache_get(a, f.org_id, key, &cached, &cached_len, version);
        if (cache_rc == BH_ENOMEM)
            return cache_rc;
    }
    if (cache_rc == 0) {
        if (reply_cached_page(req, &pg, cached, cached_len, &rc))
            return rc;
        cache_rc = BH_ENOTFOUND; /* unreadable: read Postgres, refill */
    }

    struct tasks__task *tasks = NULL;
    int n = 0;
    const char *next = NULL;
    rc = tasks__task_list(a, &f, &tasks, &n, &next);
    if (rc != 0)
        return rc;
    size_t len = 0;
    const char *body = render_page(a, tasks, n, next, &len);
    if (!body)
        return BH_ENOMEM;
    if (!f.after) {
        bh_reply_header(req, "X-Cache", cache_rc == BH_ENOTFOUND ? "miss" : "bypass");
        if (cache_rc == BH_ENOTFOUND)
            fill_list_cache(a, f.org_id, version, key, body, len, next);
    }
    return bh_reply_page_body(req, &pg, body, len, next, list_filters);
}
