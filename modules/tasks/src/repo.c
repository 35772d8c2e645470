/* Every SQL statement of the tasks module, as named parameterized
 * statements, and the code that turns rows into structs. Touches only the
 * `tasks` schema; never names a role, never formats a value into SQL. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

/* The columns of a task, in the order task_from_row() reads them. Times
 * leave Postgres as UTC wall-clock text (`AT TIME ZONE 'UTC'`, so the
 * session's TimeZone does not matter) and become RFC 3339 in C (utc_time()),
 * instead of a SQL function call per row. */
#define UTC(c) "(" c " AT TIME ZONE 'UTC')"
#define TASK_COLS                                                                                  \
    "id, org_id, project_id, title, description, status, priority, assignee_id, " UTC(             \
        "due_at") ", created_by, " UTC("created_at") ", " UTC("updated_at") ", version, " UTC("co" \
                                                                                              "mp" \
                                                                                              "le" \
                                                                                              "te" \
                                                                                              "d_" \
                                                                                              "a"  \
                                                                                              "t") ", completed_by"
enum { TASK_NCOLS = 15 };

#define PROJECT_COLS "id, org_id, name, created_by, " UTC("created_at") ", " UTC("updated_at")

#define COMMENT_COLS "id, task_id, author_id, body, " UTC("created_at")

/* ------------------------------------------------------------------ tasks */

#define INSERT_TASK                                                                                \
    "t AS ("                                                                                       \
    "  INSERT INTO tasks.tasks (id, org_id, project_id, title, description, priority,"             \
    "                           assignee_id, due_at, created_by)"                                  \
    "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *"                                    \
    ")"

/* Under a plan with a task limit. Counting locks the org's counter row:
 * concurrent creates in one org wait here, one after the other, so each
 * sees the count the previous one committed (the plan-limit check depends
 * on it). The counter counts under the terms billing gave ($10): a missing
 * row (a new org), or one kept under other terms (the plan changed since,
 * perhaps through a period without limit, when nothing was counted), is
 * seeded with the org's tasks counted; a concurrent seed conflicts and
 * waits, then increments. */
static const char SQL_INSERT_TASK_COUNTED[] =
    "WITH bumped AS ("
    "  UPDATE tasks.org_counters SET tasks = tasks + 1 WHERE org_id = $2 AND terms = $10"
    "  RETURNING tasks"
    "), seeded AS ("
    "  INSERT INTO tasks.org_counters AS c (org_id, tasks, terms)"
    "  SELECT $2::uuid, s.n + 1, $10 FROM (SELECT count(*) AS n FROM tasks.tasks WHERE org_id = "
    "$2) s"
    "  WHERE NOT EXISTS (SELECT FROM bumped)"
    "  ON CONFLICT (org_id) DO UPDATE SET terms = excluded.terms,"
    "    tasks = CASE WHEN c.terms = excluded.terms THEN c.tasks + 1 ELSE excluded.tasks END"
    "  RETURNING c.tasks"
    "), " INSERT_TASK " SELECT " TASK_COLS ", counter.tasks"
    " FROM t, (SELECT tasks FROM bumped UNION ALL SELECT tasks FROM seeded) counter";

/* Under a plan without a task limit nothing is counted and nothing locks
 * the org; a counter left from a limited period keeps its old terms and is
 * seeded again when a limit returns. */
static const char SQL_INSERT_TASK_UNCOUNTED[] = "WITH " INSERT_TASK " SELECT " TASK_COLS " FROM t";

/* Many uncounted tasks in one statement (group commit): $1 is a JSON array
 * of rows. A row Postgres refuses (a foreign project, a bad value) fails
 * the whole statement; the caller then creates each on its own. */
static const char SQL_INSERT_TASKS[] =
    "INSERT INTO tasks.tasks (id, org_id, project_id, title, description, priority,"
    "                         assignee_id, due_at, created_by)"
    " SELECT x.id, x.org_id, x.project_id, x.title, x.description, x.priority,"
    "        x.assignee_id, x.due_at, x.created_by"
    "   FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, org_id uuid, project_id uuid,"
    "        title text, description text, priority text, assignee_id uuid,"
    "        due_at timestamptz, created_by uuid)"
    " RETURNING " TASK_COLS;

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

/* The list statements: one per shape of the request (which filters are
 * given, first page or not, and page size), built once, each with only the
 * predicates it needs. The common page sizes are constants in the
 * statement: with no "$n IS NULL OR ..." and no LIMIT $n left, Postgres's
 * generic plan of the prepared statement costs what a custom one does, so
 * after five executions it stops planning per call (0.9 ms of planning for
 * 0.2 ms of execution before). Other page sizes take LIMIT $n and are
 * planned per call. Each is driven by one index ending in (created_at, id),
 * chosen by the most selective filter given (assignee, then project, then
 * status). docs/tasks.md shows the plans. */
enum {
    LIST_STATUS = 1,
    LIST_ASSIGNEE = 2,
    LIST_PROJECT = 4,
    LIST_TITLE = 8,
    LIST_CURSOR = 16,
    LIST_SHAPES = 32,
    LIST_SQL_MAX = 640,
};
/* Page sizes (limit + 1 rows are read) that get a constant LIMIT; the
 * last slot is LIMIT $n. */
static const int LIST_FIXED_LIMITS[] = {11, 21, 51, 101};
enum { LIST_LIMIT_SLOTS = sizeof LIST_FIXED_LIMITS / sizeof LIST_FIXED_LIMITS[0] + 1 };
static char list_sql[LIST_SHAPES][LIST_LIMIT_SLOTS][LIST_SQL_MAX];
static pthread_once_t list_sql_once = PTHREAD_ONCE_INIT;

/* Appends text, then $<next parameter number> and tail. */
static void list_pred(char *sql, int *n, const char *text, const char *tail)
{
    size_t used = strlen(sql);
    snprintf(sql + used, LIST_SQL_MAX - used, "%s$%d%s", text, ++*n, tail);
}

static void list_sql_build(void)
{
    for (int shape = 0; shape < LIST_SHAPES; shape++) {
        for (int slot = 0; slot < LIST_LIMIT_SLOTS; slot++) {
            char *sql = list_sql[shape][slot];
            int n = 1; /* $1 is the org */
            snprintf(sql, LIST_SQL_MAX, "SELECT " TASK_COLS " FROM tasks.tasks WHERE org_id = $1");
            if (shape & LIST_CURSOR) {
                list_pred(sql, &n, " AND (created_at, id) < (", "::timestamptz, ");
                list_pred(sql, &n, "", "::uuid)");
            }
            if (shape & LIST_ASSIGNEE)
                list_pred(sql, &n, " AND assignee_id = ", "");
            if (shape & LIST_PROJECT)
                list_pred(sql, &n, " AND project_id = ", "");
            if (shape & LIST_STATUS)
                list_pred(sql, &n, " AND status = ", "");
            if (shape & LIST_TITLE)
                list_pred(sql, &n, " AND title ILIKE ", "");
            if (slot < LIST_LIMIT_SLOTS - 1) {
                size_t used = strlen(sql);
                snprintf(sql + used, LIST_SQL_MAX - used,
                         " ORDER BY created_at DESC, id DESC LIMIT %d", LIST_FIXED_LIMITS[slot]);
            } else {
                list_pred(sql, &n, " ORDER BY created_at DESC, id DESC LIMIT ", "");
            }
        }
    }
}

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
    " SELECT c.id, c.task_id, c.author_id, c.body, " UTC(
        "c.created_at") ","
                        "        t.title, t.assignee_id, t.created_by FROM c, t";

static const char SQL_LIST_COMMENTS[] =
    "SELECT " COMMENT_COLS " FROM tasks.comments WHERE task_id = $1"
    " AND (created_at, id) > ($2::timestamptz, $3::uuid)"
    " ORDER BY created_at, id LIMIT $4";

/* ---------------------------------------------------------------- helpers */

/* Cursors for "before everything" (newest-first lists) and "after nothing"
 * (oldest-first lists): projects and comments still pass them. */
static const struct bh_cursor FIRST_DESC = {"infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
static const struct bh_cursor FIRST_ASC = {"-infinity", "00000000-0000-0000-0000-000000000000"};

/* The value at (row, col) copied into the arena; NULL for SQL NULL. */
static const char *col(struct bh_arena *a, const PGresult *r, int row, int c)
{
    if (bh_pg_null(r, row, c))
        return NULL;
    return bh_arena_strdup(a, bh_pg_str(r, row, c));
}

/* A UTC wall-clock time as Postgres prints it (ISO DateStyle, the default:
 * "YYYY-MM-DD HH:MM:SS[.frac]", fraction without trailing zeros) as
 * RFC 3339 UTC: "YYYY-MM-DDTHH:MM:SS[.frac]Z". NULL for SQL NULL, and for
 * anything else (logged: the session's DateStyle is not ISO). */
static const char *utc_time(struct bh_arena *a, const PGresult *r, int row, int c)
{
    if (bh_pg_null(r, row, c))
        return NULL;
    const char *v = bh_pg_str(r, row, c);
    char buf[48];
    if (!tasks__rfc3339_from_pg(v, buf, sizeof buf)) {
        bh_log_error("a time from Postgres is not ISO UTC text: \"%.40s\"", v);
        return NULL;
    }
    return bh_arena_strdup(a, buf);
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
        .due_at = utc_time(a, r, row, 8),
        .created_by = col(a, r, row, 9),
        .created_at = utc_time(a, r, row, 10),
        .updated_at = utc_time(a, r, row, 11),
        .version = strtoll(bh_pg_str(r, row, 12), NULL, 10),
        .completed_at = utc_time(a, r, row, 13),
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
        .created_at = utc_time(a, r, row, 4),
        .updated_at = utc_time(a, r, row, 5),
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
        .created_at = utc_time(a, r, row, 4),
    };
    return c->id && c->body && c->created_at ? 0 : BH_ENOMEM;
}

/* ------------------------------------------------------------------ tasks */

int tasks__repo_task_insert(struct bh_tx *tx, struct bh_arena *a, const struct tasks__task *in,
                            const char *terms, struct tasks__task *out, int64_t *org_count,
                            struct bh_refusal *fault)
{
    const char *params[] = {in->id,
                            in->org_id,
                            in->project_id,
                            in->title,
                            in->description ? in->description : "",
                            in->priority,
                            in->assignee_id,
                            in->due_at,
                            in->created_by,
                            terms};
    PGresult *res = NULL;
    int rc = terms ? bh_tx_query(tx, &res, SQL_INSERT_TASK_COUNTED, 10, params)
                   : bh_tx_query(tx, &res, SQL_INSERT_TASK_UNCOUNTED, 9, params);
    if (rc == BH_EINVAL && strcmp(bh_tx_constraint(tx), "tasks_project_fkey") == 0) {
        fault->field = "project_id";
        fault->detail = "is not a project of this organization";
        return BH_EUNPROCESSABLE;
    }
    if (rc != 0)
        return rc;
    rc = PQntuples(res) == 1 ? task_from_row(a, res, 0, out) : BH_EINTERNAL;
    if (rc == 0 && terms)
        *org_count = strtoll(bh_pg_str(res, 0, TASK_NCOLS), NULL, 10);
    PQclear(res);
    return rc;
}

/* A JSON string, or null for NULL (absent optional values). */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int tasks__repo_task_insert_many(struct bh_tx *tx, struct tasks__task_row *rows, int n)
{
    json_t *list = json_array();
    int rc = list ? 0 : BH_ENOMEM;
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct tasks__task *t = rows[i].in;
        json_t *row =
            json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:s}", "id", t->id, "org_id",
                      t->org_id, "project_id", str_or_null(t->project_id), "title", t->title,
                      "description", t->description ? t->description : "", "priority", t->priority,
                      "assignee_id", str_or_null(t->assignee_id), "due_at", str_or_null(t->due_at),
                      "created_by", t->created_by);
        if (json_array_append_new(list, row) != 0)
            rc = BH_ENOMEM;
    }
    char *text = rc == 0 ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    if (!text)
        return BH_ENOMEM;
    PGresult *res = NULL;
    rc = bh_tx_query(tx, &res, SQL_INSERT_TASKS, 1, (const char *const[]){text});
    free(text);
    if (rc != 0)
        return rc;
    /* Each returned row goes to the request whose id it carries. */
    int found = 0;
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        const char *id = bh_pg_str(res, r, 0);
        for (int i = 0; i < n; i++) {
            if (strcmp(rows[i].in->id, id) == 0) {
                rc = task_from_row(rows[i].a, res, r, rows[i].out);
                found++;
                break;
            }
        }
    }
    if (rc == 0 && found != n)
        rc = BH_EINTERNAL;
    PQclear(res);
    return rc;
}

int tasks__repo_task_find(struct bh_tx *tx, struct bh_arena *a, const char *org_id, const char *id,
                          bool for_update, struct tasks__task *out)
{
    const char *params[] = {id, org_id};
    PGresult *res = NULL;
    int rc = bh_query(tx, &res, for_update ? SQL_FIND_TASK_FOR_UPDATE : SQL_FIND_TASK, 2, params);
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
    char limit[16];
    const char *params[8];
    int shape = 0, np = 0;
    snprintf(limit, sizeof limit, "%d", f->limit + 1);
    pthread_once(&list_sql_once, list_sql_build);
    /* Parameters in the order list_sql_build() numbers them. */
    params[np++] = f->org_id;
    if (f->after) {
        shape |= LIST_CURSOR;
        params[np++] = f->after->created_at;
        params[np++] = f->after->id;
    }
    if (f->assignee_id) {
        shape |= LIST_ASSIGNEE;
        params[np++] = f->assignee_id;
    }
    if (f->project_id) {
        shape |= LIST_PROJECT;
        params[np++] = f->project_id;
    }
    if (f->status) {
        shape |= LIST_STATUS;
        params[np++] = f->status;
    }
    if (f->title_like) {
        shape |= LIST_TITLE;
        params[np++] = f->title_like;
    }
    int slot = 0;
    while (slot < LIST_LIMIT_SLOTS - 1 && LIST_FIXED_LIMITS[slot] != f->limit + 1)
        slot++;
    if (slot == LIST_LIMIT_SLOTS - 1)
        params[np++] = limit;
    PGresult *res = NULL;
    int rc = bh_db_query(&res, list_sql[shape][slot], np, params);
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
    int rc =
        bh_query(tx, &res, for_update ? SQL_FIND_PROJECT_FOR_UPDATE : SQL_FIND_PROJECT, 2, params);
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
