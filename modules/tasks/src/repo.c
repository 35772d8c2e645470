/* Every SQL statement of the tasks module, as named parameterized
 * statements, and the code that turns rows into structs. Touches only the
 * `tasks` schema; never names a role, never formats a value into SQL. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

/* The columns of a task, in the order task_from_row() reads them. Times are
 * formatted by tasks.rfc3339() (migrations/tasks) so every reader sees RFC 3339
 * UTC, whatever the session's TimeZone. */
#define TASK_COLS                                                                                  \
    "id, org_id, project_id, title, description, status, priority, assignee_id, "                  \
    "tasks.rfc3339(due_at), created_by, tasks.rfc3339(created_at), "                               \
    "tasks.rfc3339(updated_at), version, tasks.rfc3339(completed_at), completed_by"
enum { TASK_NCOLS = 15 };

#define PROJECT_COLS                                                                               \
    "id, org_id, name, created_by, tasks.rfc3339(created_at), tasks.rfc3339(updated_at)"

#define COMMENT_COLS "id, task_id, author_id, body, tasks.rfc3339(created_at)"

/* ------------------------------------------------------------------ tasks */

/* Counting first locks the org's counter row: concurrent creates in one org
 * wait here, one after the other, so each sees the count the previous one
 * committed (the plan-limit check depends on it). */
static const char SQL_INSERT_TASK[] =
    "WITH counter AS ("
    "  INSERT INTO tasks.org_counters AS c (org_id, tasks) VALUES ($2, 1)"
    "  ON CONFLICT (org_id) DO UPDATE SET tasks = c.tasks + 1 RETURNING c.tasks"
    "), t AS ("
    "  INSERT INTO tasks.tasks (id, org_id, project_id, title, description, priority,"
    "                           assignee_id, due_at, created_by)"
    "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *"
    ") SELECT " TASK_COLS ", counter.tasks FROM t, counter";

static const char SQL_FIND_TASK[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE id = $1 AND org_id = $2";

static const char SQL_FIND_TASK_FOR_UPDATE[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE id = $1 AND org_id = $2 FOR UPDATE";

static const char SQL_UPDATE_TASK[] =
    "UPDATE tasks.tasks SET title = $3, description = $4, status = $5, priority = $6,"
    " project_id = $7, assignee_id = $8, due_at = $9,"
    " completed_at = CASE WHEN $5 <> 'done' THEN NULL"
    "                     WHEN status <> 'done' THEN now() ELSE completed_at END,"
    " completed_by = CASE WHEN $5 <> 'done' THEN NULL"
    "                     WHEN status <> 'done' THEN $10::uuid ELSE completed_by END,"
    " updated_at = now(), version = version + 1"
    " WHERE id = $1 AND org_id = $2 RETURNING " TASK_COLS;

/* Seeded rows may never have been counted: the counter floors at zero. */
static const char SQL_DELETE_TASK[] =
    "WITH d AS (DELETE FROM tasks.tasks WHERE id = $1 AND org_id = $2 RETURNING org_id)"
    " UPDATE tasks.org_counters c SET tasks = greatest(c.tasks - 1, 0)"
    " FROM d WHERE c.org_id = d.org_id RETURNING c.tasks";

/* The list statements. Each is driven by one index ending in (created_at,
 * id), chosen by the most selective filter given; the other filters are
 * optional predicates ($n IS NULL OR ...). The first page passes the
 * cursor ('infinity', max uuid), so every page is the same range scan.
 * docs/tasks.md shows the plans. */
#define LIST_WHERE_REST                                                                            \
    " AND (created_at, id) < ($2::timestamptz, $3::uuid)"                                          \
    " AND ($4::text IS NULL OR status = $4)"                                                       \
    " AND ($5::uuid IS NULL OR assignee_id = $5)"                                                  \
    " AND ($6::uuid IS NULL OR project_id = $6)"                                                   \
    " AND ($7::text IS NULL OR title ILIKE $7)"                                                    \
    " ORDER BY created_at DESC, id DESC LIMIT $8"

static const char SQL_LIST_TASKS[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE org_id = $1" LIST_WHERE_REST;
static const char SQL_LIST_TASKS_BY_ASSIGNEE[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE org_id = $1 AND assignee_id = $5" LIST_WHERE_REST;
static const char SQL_LIST_TASKS_BY_PROJECT[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE org_id = $1 AND project_id = $6" LIST_WHERE_REST;
static const char SQL_LIST_TASKS_BY_STATUS[] =
    "SELECT " TASK_COLS " FROM tasks.tasks WHERE org_id = $1 AND status = $4" LIST_WHERE_REST;

/* --------------------------------------------------------------- projects */

static const char SQL_INSERT_PROJECT[] =
    "INSERT INTO tasks.projects (id, org_id, name, created_by) VALUES ($1, $2, $3, $4)"
    " RETURNING " PROJECT_COLS;

static const char SQL_FIND_PROJECT[] =
    "SELECT " PROJECT_COLS " FROM tasks.projects WHERE id = $1 AND org_id = $2";

static const char SQL_FIND_PROJECT_FOR_UPDATE[] =
    "SELECT " PROJECT_COLS " FROM tasks.projects WHERE id = $1 AND org_id = $2 FOR UPDATE";

static const char SQL_RENAME_PROJECT[] =
    "UPDATE tasks.projects SET name = $3, updated_at = now() WHERE id = $1 AND org_id = $2"
    " RETURNING " PROJECT_COLS;

static const char SQL_DELETE_PROJECT[] =
    "DELETE FROM tasks.projects p WHERE p.id = $1 AND p.org_id = $2 AND NOT EXISTS"
    " (SELECT 1 FROM tasks.tasks t WHERE t.org_id = p.org_id AND t.project_id = p.id)"
    " RETURNING p.id";

static const char SQL_LIST_PROJECTS[] =
    "SELECT " PROJECT_COLS " FROM tasks.projects WHERE org_id = $1"
    " AND (created_at, id) < ($2::timestamptz, $3::uuid)"
    " ORDER BY created_at DESC, id DESC LIMIT $4";

/* --------------------------------------------------------------- comments */

static const char SQL_INSERT_COMMENT[] =
    "WITH t AS (SELECT id, org_id, title, assignee_id, created_by FROM tasks.tasks"
    "           WHERE id = $2 AND org_id = $3),"
    " c AS (INSERT INTO tasks.comments (id, task_id, org_id, author_id, body)"
    "       SELECT $1, t.id, t.org_id, $4, $5 FROM t RETURNING *)"
    " SELECT c.id, c.task_id, c.author_id, c.body, tasks.rfc3339(c.created_at),"
    "        t.title, t.assignee_id, t.created_by FROM c, t";

static const char SQL_LIST_COMMENTS[] =
    "SELECT " COMMENT_COLS " FROM tasks.comments WHERE task_id = $1"
    " AND (created_at, id) > ($2::timestamptz, $3::uuid)"
    " ORDER BY created_at, id LIMIT $4";

/* ---------------------------------------------------------------- helpers */

/* Cursors for "before everything" (newest-first lists) and "after nothing"
 * (oldest-first lists). */
static const struct bh_cursor FIRST_DESC = {"infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
static const struct bh_cursor FIRST_ASC = {"-infinity", "00000000-0000-0000-0000-000000000000"};

/* The value at (row, col) copied into the arena; NULL for SQL NULL. */
static const char *col(struct bh_arena *a, const PGresult *r, int row, int c)
{
    if (bh_pg_null(r, row, c))
        return NULL;
    return bh_arena_strdup(a, bh_pg_str(r, row, c));
}

static int task_from_row(struct bh_arena *a, const PGresult *r, int row, struct tasks__task *t)
{
    *t = (struct tasks__task){
        .id = col(a, r, row, 0),
        .org_id = col(a, r, row, 1),
        .project_id = col(a, r, row, 2),
        .title = col(a, r, row, 3),
        .description = col(a, r, row, 4),
        .status = col(a, r, row, 5),
        .priority = col(a, r, row, 6),
        .assignee_id = col(a, r, row, 7),
        .due_at = col(a, r, row, 8),
        .created_by = col(a, r, row, 9),
        .created_at = col(a, r, row, 10),
        .updated_at = col(a, r, row, 11),
        .version = strtoll(bh_pg_str(r, row, 12), NULL, 10),
        .completed_at = col(a, r, row, 13),
        .completed_by = col(a, r, row, 14),
    };
    return t->id && t->title && t->updated_at ? 0 : BH_ENOMEM;
}

static int project_from_row(struct bh_arena *a, const PGresult *r, int row,
                            struct tasks__project *p)
{
    *p = (struct tasks__project){
        .id = col(a, r, row, 0),
        .org_id = col(a, r, row, 1),
        .name = col(a, r, row, 2),
        .created_by = col(a, r, row, 3),
        .created_at = col(a, r, row, 4),
        .updated_at = col(a, r, row, 5),
    };
    return p->id && p->name && p->updated_at ? 0 : BH_ENOMEM;
}

static int comment_from_row(struct bh_arena *a, const PGresult *r, int row,
                            struct tasks__comment *c)
{
    *c = (struct tasks__comment){
        .id = col(a, r, row, 0),
        .task_id = col(a, r, row, 1),
        .author_id = col(a, r, row, 2),
        .body = col(a, r, row, 3),
        .created_at = col(a, r, row, 4),
    };
    return c->id && c->body && c->created_at ? 0 : BH_ENOMEM;
}

/* Runs sql on tx, or in its own transaction when tx is NULL. */
static int run(struct bh_tx *tx, PGresult **res, const char *sql, int n, const char *const *params)
{
    return tx ? bh_tx_query(tx, res, sql, n, params) : bh_db_query(res, sql, n, params);
}

/* ------------------------------------------------------------------ tasks */

int tasks__repo_task_insert(struct bh_tx *tx, struct bh_arena *a, const struct tasks__task *in,
                            struct tasks__task *out, int64_t *org_count, struct bh_refusal *fault)
{
    const char *params[] = {in->id,
                            in->org_id,
                            in->project_id,
                            in->title,
                            in->description ? in->description : "",
                            in->priority,
                            in->assignee_id,
                            in->due_at,
                            in->created_by};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_INSERT_TASK, 9, params);
    if (rc == BH_EINVAL && strcmp(bh_tx_constraint(tx), "tasks_project_fkey") == 0) {
        fault->field = "project_id";
        fault->detail = "is not a project of this organization";
        return BH_EUNPROCESSABLE;
    }
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? task_from_row(a, res, 0, out) : BH_EINTERNAL;
    if (rc == 0)
        *org_count = strtoll(bh_pg_str(res, 0, TASK_NCOLS), NULL, 10);
    PQclear(res);
    return rc;
}

int tasks__repo_task_find(struct bh_tx *tx, struct bh_arena *a, const char *org_id, const char *id,
                          bool for_update, struct tasks__task *out)
{
    const char *params[] = {id, org_id};
    PGresult *res = NULL;
    int rc = run(tx, &res, for_update ? SQL_FIND_TASK_FOR_UPDATE : SQL_FIND_TASK, 2, params);
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? task_from_row(a, res, 0, out) : BH_ENOTFOUND;
    PQclear(res);
    return rc;
}

int tasks__repo_task_update(struct bh_tx *tx, struct bh_arena *a, const struct tasks__task *t,
                            const char *actor_id, struct tasks__task *out)
{
    const char *params[] = {t->id,       t->org_id,     t->title,       t->description, t->status,
                            t->priority, t->project_id, t->assignee_id, t->due_at,      actor_id};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_UPDATE_TASK, 10, params);
    if (rc == BH_EINVAL && strcmp(bh_tx_constraint(tx), "tasks_project_fkey") == 0)
        return BH_EUNPROCESSABLE;
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? task_from_row(a, res, 0, out) : BH_ENOTFOUND;
    PQclear(res);
    return rc;
}

int tasks__repo_task_delete(struct bh_tx *tx, const char *org_id, const char *id)
{
    const char *params[] = {id, org_id};
    return bh_tx_query(tx, NULL, SQL_DELETE_TASK, 2, params);
}

int tasks__repo_task_list(struct bh_arena *a, const struct tasks__task_filter *f,
                          struct tasks__task **out, int *n)
{
    const struct bh_cursor *after = f->after ? f->after : &FIRST_DESC;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", f->limit + 1);
    const char *params[] = {f->org_id,      after->created_at, after->id,     f->status,
                            f->assignee_id, f->project_id,     f->title_like, limit};
    const char *sql = f->assignee_id  ? SQL_LIST_TASKS_BY_ASSIGNEE
                      : f->project_id ? SQL_LIST_TASKS_BY_PROJECT
                      : f->status     ? SQL_LIST_TASKS_BY_STATUS
                                      : SQL_LIST_TASKS;
    PGresult *res = NULL;
    int rc = bh_db_query(&res, sql, 8, params);
    if (rc != 0)
        return rc;
    int rows = PQntuples(res);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(rows ? rows : 1));
    if (!*out)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++)
        rc = task_from_row(a, res, i, &(*out)[i]);
    *n = rows;
    PQclear(res);
    return rc;
}

/* --------------------------------------------------------------- projects */

int tasks__repo_project_insert(struct bh_tx *tx, struct bh_arena *a, const struct tasks__project *p,
                               struct tasks__project *out)
{
    const char *params[] = {p->id, p->org_id, p->name, p->created_by};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_INSERT_PROJECT, 4, params);
    if (rc != 0)
        return rc; /* BH_ECONFLICT: the name is taken in this org */
    rc = PQntuples(res) == 1 ? project_from_row(a, res, 0, out) : BH_EINTERNAL;
    PQclear(res);
    return rc;
}

int tasks__repo_project_find(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                             const char *id, bool for_update, struct tasks__project *out)
{
    const char *params[] = {id, org_id};
    PGresult *res = NULL;
    int rc = run(tx, &res, for_update ? SQL_FIND_PROJECT_FOR_UPDATE : SQL_FIND_PROJECT, 2, params);
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? project_from_row(a, res, 0, out) : BH_ENOTFOUND;
    PQclear(res);
    return rc;
}

int tasks__repo_project_rename(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                               const char *id, const char *name, struct tasks__project *out)
{
    const char *params[] = {id, org_id, name};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_RENAME_PROJECT, 3, params);
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? project_from_row(a, res, 0, out) : BH_ENOTFOUND;
    PQclear(res);
    return rc;
}

int tasks__repo_project_delete(struct bh_tx *tx, const char *org_id, const char *id)
{
    const char *params[] = {id, org_id};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_DELETE_PROJECT, 2, params);
    /* A task created meanwhile still references it: the foreign key says no. */
    if (rc == BH_EINVAL && strcmp(bh_tx_constraint(tx), "tasks_project_fkey") == 0)
        return BH_ECONFLICT;
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : BH_ECONFLICT;
    PQclear(res);
    return rc;
}

int tasks__repo_project_list(struct bh_arena *a, const char *org_id, const struct bh_cursor *after,
                             int limit, struct tasks__project **out, int *n)
{
    if (!after)
        after = &FIRST_DESC;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {org_id, after->created_at, after->id, lim};
    PGresult *res = NULL;
    int rc = bh_db_query(&res, SQL_LIST_PROJECTS, 4, params);
    if (rc != 0)
        return rc;
    int rows = PQntuples(res);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(rows ? rows : 1));
    if (!*out)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++)
        rc = project_from_row(a, res, i, &(*out)[i]);
    *n = rows;
    PQclear(res);
    return rc;
}

/* --------------------------------------------------------------- comments */

int tasks__repo_comment_insert(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                               const struct tasks__comment *c, struct tasks__comment *out,
                               struct tasks__task *task)
{
    const char *params[] = {c->id, c->task_id, org_id, c->author_id, c->body};
    PGresult *res = NULL;
    int rc = bh_tx_query(tx, &res, SQL_INSERT_COMMENT, 5, params);
    /* The task was deleted between our read and the insert. */
    if (rc == BH_EINVAL && strcmp(bh_tx_sqlstate(tx), "23503") == 0)
        return BH_ENOTFOUND;
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return BH_ENOTFOUND;
    }
    rc = comment_from_row(a, res, 0, out);
    *task = (struct tasks__task){
        .id = out->task_id,
        .org_id = org_id,
        .title = col(a, res, 0, 5),
        .assignee_id = col(a, res, 0, 6),
        .created_by = col(a, res, 0, 7),
    };
    PQclear(res);
    return rc == 0 && task->title ? 0 : BH_ENOMEM;
}

int tasks__repo_comment_list(struct bh_arena *a, const char *task_id, const struct bh_cursor *after,
                             int limit, struct tasks__comment **out, int *n)
{
    if (!after)
        after = &FIRST_ASC;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {task_id, after->created_at, after->id, lim};
    PGresult *res = NULL;
    int rc = bh_db_query(&res, SQL_LIST_COMMENTS, 4, params);
    if (rc != 0)
        return rc;
    int rows = PQntuples(res);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(rows ? rows : 1));
    if (!*out)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++)
        rc = comment_from_row(a, res, i, &(*out)[i]);
    *n = rows;
    PQclear(res);
    return rc;
}
