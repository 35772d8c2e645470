/* What the tasks module's own files share: the domain types, the rules
 * (rules.c, pure), the repository (repo.c, all SQL), the cache (cache.c),
 * events (events.c) and the services (service*.c) the handlers call.
 * Nothing here is visible outside the module: the seal makes these local. */
#ifndef TASKS_INTERNAL_H
#define TASKS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/auth.h"
#include "platform/arena.h"
#include "platform/cursor.h"
#include "platform/http.h"
#include "platform/page.h"
#include "platform/refusal.h"

struct bh_tx;

/* ------------------------------------------------------------------ types */

/* A task as stored. Every string lives in the arena it was read into;
 * optional values are NULL. Times are RFC 3339 UTC text. */
struct tasks__task {
    const char *id, *org_id, *project_id, *title, *description, *status, *priority;
    const char *assignee_id, *due_at, *created_by, *created_at, *updated_at;
    const char *completed_at, *completed_by;
    int64_t version;
};

struct tasks__project {
    const char *id, *org_id, *name, *created_by, *created_at, *updated_at;
};

struct tasks__comment {
    const char *id, *task_id, *author_id, *body, *created_at;
};

/* What a create or a PATCH asks for. For a PATCH, has_* tells which fields
 * were sent; a sent optional field may be NULL (JSON null: clear it). */
struct tasks__task_input {
    const char *title, *description, *status, *priority, *project_id, *assignee_id, *due_at;
    bool has_title, has_description, has_status, has_priority, has_project, has_assignee, has_due;
};

/* A page of tasks, newest first. */
struct tasks__task_filter {
    const char *org_id;
    const char *status;            /* NULL: any */
    const char *assignee_id;       /* NULL: any */
    const char *project_id;        /* NULL: any */
    const char *title_like;        /* an ILIKE pattern, already escaped; NULL: any */
    const struct bh_cursor *after; /* NULL: first page */
    int limit;
};

enum tasks__cache_result { TASKS__CACHE_HIT, TASKS__CACHE_MISS, TASKS__CACHE_BYPASS };

/* One task as the GET-one path serves it: the JSON text (arena), ready to
 * send as it is, whether it came from the cache, and its version. */
struct tasks__task_view {
    const char *json;
    size_t len;
    int64_t version;
    enum tasks__cache_result cache;
};

/* ------------------------------------------------------- rules (rules.c) */

bool tasks__status_valid(const char *s);
/* Postgres's ISO text of a UTC timestamp as RFC 3339 ("...Z") in out;
 * false when pg is not that text or out is too small. */
bool tasks__rfc3339_from_pg(const char *pg, char *out, size_t size);
bool tasks__priority_valid(const char *s);
/* todo → in_progress → done, done → todo (reopen). Same → same is no change. */
bool tasks__transition_allowed(const char *from, const char *to);

/* ETags are strong, on the version: "v<version>". */
void tasks__etag_format(char *buf, size_t size, int64_t version);
/* Does an If-Match (strong comparison) / If-None-Match (weak comparison)
 * header value, a list of entity tags or "*", match version? */
bool tasks__etag_matches(const char *header, int64_t version, bool weak);

/* An ILIKE pattern matching q anywhere, with %, _ and \ in q escaped. */
char *tasks__like_pattern(struct bh_arena *a, const char *q);

/* --------------------------------------------------------- repo (repo.c) */

/* Inserts a task. terms non-NULL (the org's plan limits its tasks, under
 * these terms: billing_limits()): also counts it in the org's counter,
 * which it locks until the transaction ends, and sets *org_count to the
 * org's task count including it. terms NULL: not counted, no lock on the
 * org, *org_count untouched. BH_EUNPROCESSABLE with fault->field
 * "project_id" when the project is not one of the org's. */
int tasks__repo_task_insert(struct bh_tx *tx, struct bh_arena *a, const struct tasks__task *in,
                            const char *terms, struct tasks__task *out, int64_t *org_count,
                            struct bh_refusal *fault);
/* One task of a batch: its row, and where the stored task goes (out,
 * allocated in a, the arena of the request it belongs to). */
struct tasks__task_row {
    const struct tasks__task *in;
    struct bh_arena *a;
    struct tasks__task *out;
};
/* Inserts n tasks uncounted, in one statement. Any refused row fails all of
 * them (BH_EINVAL, BH_ECONFLICT: the transaction is aborted). */
int tasks__repo_task_insert_many(struct bh_tx *tx, struct tasks__task_row *rows, int n);
/* tx NULL: a read in its own transaction. for_update locks the row. */
int tasks__repo_task_find(struct bh_tx *tx, struct bh_arena *a, const char *org_id, const char *id,
                          bool for_update, struct tasks__task *out);
/* Writes every field of t (its id, org_id and version as read), bumping the
 * version. completed_by: who moved it to done, when it moves to done. */
int tasks__repo_task_update(struct bh_tx *tx, struct bh_arena *a, const struct tasks__task *t,
                            const char *actor_id, struct tasks__task *out);
/* Deletes the task (its comments go with it) and uncounts it. */
int tasks__repo_task_delete(struct bh_tx *tx, const char *org_id, const char *id);
/* Up to f->limit + 1 tasks, so the caller knows whether a next page exists. */
int tasks__repo_task_list(struct bh_arena *a, const struct tasks__task_filter *f,
                          struct tasks__task **out, int *n);

int tasks__repo_project_insert(struct bh_tx *tx, struct bh_arena *a, const struct tasks__project *p,
                               struct tasks__project *out);
int tasks__repo_project_find(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                             const char *id, bool for_update, struct tasks__project *out);
int tasks__repo_project_rename(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                               const char *id, const char *name, struct tasks__project *out);
/* BH_ECONFLICT while tasks still belong to the project. */
int tasks__repo_project_delete(struct bh_tx *tx, const char *org_id, const char *id);
int tasks__repo_project_list(struct bh_arena *a, const char *org_id, const struct bh_cursor *after,
                             int limit, struct tasks__project **out, int *n);

/* Inserts a comment on a task of org_id; *task receives the task's title,
 * assignee and creator (for the event). BH_ENOTFOUND when there is no such
 * task in the org. */
int tasks__repo_comment_insert(struct bh_tx *tx, struct bh_arena *a, const char *org_id,
                               const struct tasks__comment *c, struct tasks__comment *out,
                               struct tasks__task *task);
/* Oldest first, after the cursor; up to limit + 1. */
int tasks__repo_comment_list(struct bh_arena *a, const char *task_id, const struct bh_cursor *after,
                             int limit, struct tasks__comment **out, int *n);

/* ------------------------------------------------------- cache (cache.c) */

int tasks__cache_init(void);
/* 0 and the entry (arena) on a hit; BH_ENOTFOUND on a miss;
 * BH_EUNAVAILABLE when Redis cannot be used (bypass). */
int tasks__cache_get(struct bh_arena *a, const char *id, const char **entry, size_t *len);
/* Takes the single-flight fill lease for id: 0 (token set), BH_ECONFLICT
 * when another request is filling, BH_EUNAVAILABLE. */
int tasks__cache_lease(const char *id, char token[33]);
/* Stores entry under id only if the lease is still ours (no write has
 * invalidated it since): a fill can never resurrect an old version. */
void tasks__cache_fill(const char *id, const char *token, const char *entry, size_t len);
/* Gives up a lease whose read found nothing to fill (404, another org). */
void tasks__cache_release(const char *id, const char *token);
/* After a committed change: drops the entry and any fill lease. */
void tasks__cache_invalidate(const char *id);
/* First pages of lists, per org and canonical query text. get: 0 with the
 * page (arena) and the org's list version, BH_ENOTFOUND with the version
 * (fill under it), BH_EUNAVAILABLE (do not cache). */
int tasks__list_cache_get(struct bh_arena *a, const char *org, const char *query, const char **page,
                          size_t *len, char version[33]);
void tasks__list_cache_fill(const char *org, const char *version, const char *query,
                            const char *page, size_t len);
/* After any committed change to the org's tasks or projects. */
void tasks__list_cache_invalidate(const char *org);
/* The same for several orgs, in one DEL (a batch of creates). */
void tasks__list_cache_invalidate_many(const bh_uuid *orgs, int n);
/* Counts a GET-one outcome for /metrics. */
void tasks__cache_count(enum tasks__cache_result r);
void tasks__cache_count_load(void);
const char *tasks__cache_result_name(enum tasks__cache_result r);

/* ----------------------------------------------------- events (events.c) */

extern const char *const tasks__emits[];
int tasks__emit_task(struct bh_tx *tx, const char *type, const struct tasks__task *t,
                     const char *actor_id);
/* task.created (and task.assigned when it has an assignee) for each of n
 * tasks created on tx by different requests: one outbox statement, each
 * envelope with its own request's trace. */
struct tasks__created {
    const struct tasks__task *task;
    const char *actor_id, *request_id, *trace_id;
};
int tasks__emit_created_many(struct bh_tx *tx, const struct tasks__created *c, int n);
int tasks__emit_task_deleted(struct bh_tx *tx, const struct tasks__task *t, const char *actor_id);
int tasks__emit_commented(struct bh_tx *tx, const struct tasks__task *t,
                          const struct tasks__comment *c);
int tasks__emit_project(struct bh_tx *tx, const char *type, const struct tasks__project *p,
                        const char *actor_id);

/* --------------------------------------------------- render (render.c) */

json_t *tasks__task_json(const struct tasks__task *t);
/* A JSON string, or null for NULL. */
json_t *tasks__json_str_or_null(const char *s);
json_t *tasks__project_json(const struct tasks__project *p);
json_t *tasks__comment_json(const struct tasks__comment *c);

/* -------------------------------------------------- services (service*.c) */

int tasks__task_create(const struct auth_principal *p, const struct tasks__task_input *in,
                       struct bh_arena *a, struct tasks__task *out, struct bh_refusal *fault);
/* The GET-one path: cache first, then Postgres. BH_ENOTFOUND. */
int tasks__task_read(struct bh_arena *a, const char *org_id, const char *id,
                     struct tasks__task_view *out);
/* if_match: the header value or NULL (unconditional). */
int tasks__task_update(const struct auth_principal *p, const char *id,
                       const struct tasks__task_input *in, const char *if_match, struct bh_arena *a,
                       struct tasks__task *out, struct bh_refusal *fault);
int tasks__task_delete(const struct auth_principal *p, const char *id, const char *if_match,
                       struct bh_arena *a);
int tasks__task_list(struct bh_arena *a, const struct tasks__task_filter *f,
                     struct tasks__task **out, int *n, const char **next_cursor);

int tasks__project_create(const struct auth_principal *p, const char *name, struct bh_arena *a,
                          struct tasks__project *out);
int tasks__project_get(struct bh_arena *a, const char *org_id, const char *id,
                       struct tasks__project *out);
int tasks__project_rename(const struct auth_principal *p, const char *id, const char *name,
                          struct bh_arena *a, struct tasks__project *out);
int tasks__project_delete(const struct auth_principal *p, const char *id, struct bh_arena *a);

int tasks__comment_create(const struct auth_principal *p, const char *task_id, const char *body,
                          struct bh_arena *a, struct tasks__comment *out);
/* The task's comments, oldest first. BH_ENOTFOUND when the task is not the org's. */
int tasks__comment_list(struct bh_arena *a, const char *org_id, const char *task_id,
                        const struct bh_cursor *after, int limit, struct tasks__comment **out,
                        int *n, const char **next_cursor);
int tasks__project_list(struct bh_arena *a, const char *org_id, const struct bh_cursor *after,
                        int limit, struct tasks__project **out, int *n, const char **next_cursor);

/* ---------------------------------------------------- handlers (http*.c) */

int tasks__http_task_list(struct bh_req *req);
int tasks__http_task_create(struct bh_req *req);
int tasks__http_task_get(struct bh_req *req);
int tasks__http_task_patch(struct bh_req *req);
int tasks__http_task_delete(struct bh_req *req);
int tasks__http_project_list(struct bh_req *req);
int tasks__http_project_create(struct bh_req *req);
int tasks__http_project_get(struct bh_req *req);
int tasks__http_project_patch(struct bh_req *req);
int tasks__http_project_delete(struct bh_req *req);
int tasks__http_comment_list(struct bh_req *req);
int tasks__http_comment_create(struct bh_req *req);

/* Shared by the handlers: the caller's membership of the {org} path
 * parameter (401/403/404 as auth decides), and the {id} path parameter,
 * where anything but a UUID names nothing (404). */
int tasks__http_require_member(struct bh_req *req, const struct auth_principal **p);
int tasks__http_path_id(struct bh_req *req, bh_uuid *id);
/* The page arguments (bh_page_args()) and the keyset position its cursor
 * carries, as field errors on req when invalid. Lists answer with
 * bh_reply_page(). */
int tasks__http_page_args(struct bh_req *req, struct bh_page *page, struct bh_cursor *cursor,
                          bool *has_cursor);

#endif
