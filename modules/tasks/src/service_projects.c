/* The tasks module's rules for projects and comments: uniqueness, who may
 * delete, and the events. Each write is one transaction with its events.
 * Never speaks HTTP. */
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/uuid.h"

/* ---------------------------------------------------------------- projects */

int tasks__project_create(const struct auth_principal *p, const char *name, struct bh_arena *a,
                          struct tasks__project *out)
{
    bh_uuid id = bh_uuid_v7();
    const struct tasks__project in = {
        .id = id.str, .org_id = p->org_id.str, .name = name, .created_by = p->user_id.str};
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = tasks__repo_project_insert(tx, a, &in, out);
    if (rc == 0)
        rc = tasks__emit_project(tx, "project.created", out, p->user_id.str);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

int tasks__project_get(struct bh_arena *a, const char *org_id, const char *id,
                       struct tasks__project *out)
{
    return tasks__repo_project_find(NULL, a, org_id, id, false, out);
}

int tasks__project_rename(const struct auth_principal *p, const char *id, const char *name,
                          struct bh_arena *a, struct tasks__project *out)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = tasks__repo_project_rename(tx, a, p->org_id.str, id, name, out);
    if (rc == 0)
        rc = tasks__emit_project(tx, "project.renamed", out, p->user_id.str);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

/* A project with tasks is not deleted (409): its tasks would lose their
 * project silently. Move or delete them first. */
int tasks__project_delete(const struct auth_principal *p, const char *id, struct bh_arena *a)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    struct tasks__project cur;
    rc = tasks__repo_project_find(tx, a, p->org_id.str, id, true, &cur);
    if (rc == 0 && p->role < AUTH_ROLE_ADMIN && strcmp(cur.created_by, p->user_id.str) != 0)
        rc = BH_EFORBIDDEN;
    if (rc == 0)
        rc = tasks__repo_project_delete(tx, p->org_id.str, id);
    if (rc == 0)
        rc = tasks__emit_project(tx, "project.deleted", &cur, p->user_id.str);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    rc = bh_tx_commit(tx);
    if (rc == 0) /* a list filtered by this project now answers 404 */
        tasks__list_cache_invalidate(p->org_id.str);
    return rc;
}

int tasks__project_list(struct bh_arena *a, const char *org_id, const struct bh_cursor *after,
                        int limit, struct tasks__project **out, int *n, const char **next_cursor)
{
    *next_cursor = NULL;
    int rc = tasks__repo_project_list(a, org_id, after, limit, out, n);
    if (rc == 0 && *n > limit) {
        *n = limit;
        const struct tasks__project *last = &(*out)[limit - 1];
        *next_cursor = bh_cursor_encode(a, last->created_at, last->id);
        rc = *next_cursor ? 0 : BH_ENOMEM;
    }
    return rc;
}

/* ---------------------------------------------------------------- comments */

int tasks__comment_create(const struct auth_principal *p, const char *task_id, const char *body,
                          struct bh_arena *a, struct tasks__comment *out)
{
    bh_uuid id = bh_uuid_v7();
    const struct tasks__comment in = {
        .id = id.str, .task_id = task_id, .author_id = p->user_id.str, .body = body};
    struct tasks__task task;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = tasks__repo_comment_insert(tx, a, p->org_id.str, &in, out, &task);
    if (rc == 0)
        rc = tasks__emit_commented(tx, &task, out);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

int tasks__comment_list(struct bh_arena *a, const char *org_id, const char *task_id,
                        const struct bh_cursor *after, int limit, struct tasks__comment **out,
                        int *n, const char **next_cursor)
{
    *next_cursor = NULL;
    struct tasks__task task;
    int rc = tasks__repo_task_find(NULL, a, org_id, task_id, false, &task);
    if (rc == 0)
        rc = tasks__repo_comment_list(a, task_id, after, limit, out, n);
    if (rc == 0 && *n > limit) {
        *n = limit;
        const struct tasks__comment *last = &(*out)[limit - 1];
        *next_cursor = bh_cursor_encode(a, last->created_at, last->id);
        rc = *next_cursor ? 0 : BH_ENOMEM;
    }
    return rc;
}
