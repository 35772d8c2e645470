/* HTTP handlers for projects and for the comments of a task: parse,
 * authorize through auth, call the service, answer. Never put a rule here
 * that the service should own. */
#include "internal.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/uuid.h"

static int reply_name_taken(struct bh_req *req)
{
    static const struct bh_refusal why = {
        .code = "project_name_taken",
        .detail = "A project with this name already exists in the organization.",
    };
    return bh_reply_refusal(req, BH_ECONFLICT, &why, NULL);
}

/* --------------------------------------------------------------- projects */

int tasks__http_project_list(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    struct bh_page page;
    struct bh_cursor cursor;
    bool has_cursor = false;
    if (tasks__http_page_args(req, &page, &cursor, &has_cursor) != 0)
        return bh_reply_field_errors(req);
    struct tasks__project *projects = NULL;
    int n = 0;
    const char *next = NULL;
    rc = tasks__project_list(bh_req_arena(req), p->org_id.str, has_cursor ? &cursor : NULL,
                             page.limit, &projects, &n, &next);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, tasks__project_json(&projects[i]));
    return bh_reply_page(req, &page, data, next, NULL);
}

int tasks__http_project_create(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    if (rc != 0)
        return rc;
    const char *name = NULL;
    const struct bh_json_field fields[] = {BH_JSON_LINE("name", &name, 1, 100, true), {0}};
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    struct tasks__project out;
    rc = tasks__project_create(p, name, bh_req_arena(req), &out);
    if (rc == BH_ECONFLICT)
        return reply_name_taken(req);
    if (rc != 0)
        return rc;
    bh_reply_header(
        req, "Location",
        bh_arena_printf(bh_req_arena(req), "/v1/orgs/%s/projects/%s", out.org_id, out.id));
    return bh_reply_json(req, 201, tasks__project_json(&out));
}

int tasks__http_project_get(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    bh_uuid id;
    if (rc != 0 || (rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    struct tasks__project out;
    rc = tasks__project_get(bh_req_arena(req), p->org_id.str, id.str, &out);
    if (rc != 0)
        return rc;
    return bh_reply_json(req, 200, tasks__project_json(&out));
}

int tasks__http_project_patch(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    bh_uuid id;
    if (rc != 0 || (rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    const char *name = NULL;
    const struct bh_json_field fields[] = {BH_JSON_LINE("name", &name, 1, 100, true), {0}};
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    struct tasks__project out;
    rc = tasks__project_rename(p, id.str, name, bh_req_arena(req), &out);
    if (rc == BH_ECONFLICT)
        return reply_name_taken(req);
    if (rc != 0)
        return rc;
    return bh_reply_json(req, 200, tasks__project_json(&out));
}

int tasks__http_project_delete(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    bh_uuid id;
    if (rc != 0 || (rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    rc = tasks__project_delete(p, id.str, bh_req_arena(req));
    if (rc == BH_ECONFLICT) {
        static const struct bh_refusal why = {
            .code = "project_not_empty",
            .detail = "The project still has tasks: move them to another project or delete "
                      "them first.",
        };
        return bh_reply_refusal(req, rc, &why, NULL);
    }
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

/* --------------------------------------------------------------- comments */

int tasks__http_comment_list(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    bh_uuid id;
    if (rc != 0 || (rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    struct bh_page page;
    struct bh_cursor cursor;
    bool has_cursor = false;
    if (tasks__http_page_args(req, &page, &cursor, &has_cursor) != 0)
        return bh_reply_field_errors(req);
    struct tasks__comment *comments = NULL;
    int n = 0;
    const char *next = NULL;
    rc = tasks__comment_list(bh_req_arena(req), p->org_id.str, id.str, has_cursor ? &cursor : NULL,
                             page.limit, &comments, &n, &next);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, tasks__comment_json(&comments[i]));
    return bh_reply_page(req, &page, data, next, NULL);
}

int tasks__http_comment_create(struct bh_req *req)
{
    const struct auth_principal *p = NULL;
    int rc = tasks__http_require_member(req, &p);
    bh_uuid id;
    if (rc != 0 || (rc = tasks__http_path_id(req, &id)) != 0)
        return rc;
    const char *body = NULL;
    const struct bh_json_field fields[] = {BH_JSON_STRING("body", &body, 1, 5000, true), {0}};
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    struct tasks__comment out;
    rc = tasks__comment_create(p, id.str, body, bh_req_arena(req), &out);
    if (rc != 0)
        return rc;
    return bh_reply_json(req, 201, tasks__comment_json(&out));
}
