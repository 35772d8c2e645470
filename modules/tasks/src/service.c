/* The tasks module's rules for tasks: who may do what, in which order the
 * writes, the plan-limit check, the events and the cache invalidation
 * happen. Every write is one transaction, its events ride on it, and the
 * cache is invalidated only after it committed. Never speaks HTTP. */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/billing.h"
#include "internal.h"
#include "platform/clock.h"
#include "platform/combine.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/uuid.h"

enum {
    LEASE_WAITS = 20,  /* how often a reader polls for another's fill ... */
    LEASE_POLL_MS = 5, /* ... and how long it waits between polls */
};

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* An assignee must be a member of the task's org (auth decides, usually
 * from its cache). assignee_id is a UUID already (the handler checked). */
static int check_assignee(const struct auth_principal *p, const char *assignee_id,
                          struct bh_refusal *fault)
{
    bh_uuid user;
    enum auth_role role = AUTH_ROLE_NONE;
    if (!assignee_id)
        return 0;
    if (bh_uuid_parse(assignee_id, &user)) {
        int rc = auth_member_role(&p->org_id, &user, &role);
        if (rc != 0)
            return rc;
    }
    if (role == AUTH_ROLE_NONE) {
        fault->field = "assignee_id";
        fault->detail = "is not a member of this organization";
        return BH_EUNPROCESSABLE;
    }
    return 0;
}

/* ----------------------------------------------------------------- create */

/* Creates run in one of two ways. Group commit (the usual one): concurrent
 * creates in this process are gathered by a combiner and one of their
 * threads runs them as one transaction: the limits of their orgs in one
 * statement, the tasks in one INSERT, their events in one outbox INSERT,
 * COMMIT; each request is answered only after that COMMIT. That is for
 * orgs whose plan has no task limit. Alone: a create of an org under a
 * limit runs on its own transaction, counted and serialised per org (the
 * plan-limit check), as does every create of a batch that Postgres refused
 * because of one of its rows, so that each gets its own exact answer. */
enum {
    BATCH_MAX = 32, /* creates per transaction; the HTTP threads bound it sooner */
    HINTS = 256,    /* orgs whose last seen plan had a limit: a route hint */
};

/* Creates go alone when their org's plan had a limit the last time this
 * process looked, saving the batch's limit read. Only a hint: both ways
 * read the limit in their own transaction and act on what they read. */
static struct {
    pthread_mutex_t mu;
    char org[HINTS][BH_UUID_TEXT_SIZE];
    bool limited[HINTS];
} hints = {.mu = PTHREAD_MUTEX_INITIALIZER};

static unsigned hint_slot(const bh_uuid *org)
{
    unsigned h = 2166136261u; /* FNV-1a over the text */
    for (const char *c = org->str; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % HINTS;
}

static bool hint_limited(const bh_uuid *org)
{
    unsigned i = hint_slot(org);
    pthread_mutex_lock(&hints.mu);
    bool limited = hints.limited[i] && strcmp(hints.org[i], org->str) == 0;
    pthread_mutex_unlock(&hints.mu);
    return limited;
}

static void hint_set(const bh_uuid *org, bool limited)
{
    unsigned i = hint_slot(org);
    pthread_mutex_lock(&hints.mu);
    memcpy(hints.org[i], org->str, BH_UUID_TEXT_SIZE);
    hints.limited[i] = limited;
    pthread_mutex_unlock(&hints.mu);
}

/* A create on its own transaction. The plan's limit is read first, before
 * anything is locked. Under a limit, inserting counts the task and locks
 * the org's counter, so the check below and the insert are one serialised
 * step per org, and the lock is held only for the insert's answer, the
 * outbox row and COMMIT (which travel together). Without a limit nothing
 * locks the org. */
static int create_alone(const struct auth_principal *p, const struct tasks__task *t,
                        struct bh_arena *a, struct tasks__task *out, struct bh_refusal *fault)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    int64_t count = 0;
    struct billing_limit limit;
    rc = billing_limits(tx, &p->org_id, 1, BILLING_RESOURCE_TASKS, &limit);
    if (rc != 0)
        goto out_rollback;
    bool counted = limit.limit != BILLING_UNLIMITED;
    hint_set(&p->org_id, counted);
    rc = tasks__repo_task_insert(tx, a, t, counted ? limit.terms : NULL, out, &count, fault);
    if (rc != 0)
        goto out_rollback;
    if (counted && count > limit.limit) {
        fault->resource = "tasks";
        fault->limit = limit.limit;
        fault->usage = count - 1;
        rc = BH_ELIMIT;
        goto out_rollback;
    }
    rc = tasks__emit_task(tx, "task.created", out, p->user_id.str);
    if (rc == 0 && out->assignee_id)
        rc = tasks__emit_task(tx, "task.assigned", out, p->user_id.str);
    if (rc != 0)
        goto out_rollback;
    rc = bh_tx_commit(tx);
    if (rc == 0)
        tasks__list_cache_invalidate(p->org_id.str);
    return rc;

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

/* One create waiting in the combiner: the request's row and where its
 * answer goes. Owned by the request's thread, which waits while a batch
 * uses it. */
struct create_item {
    const struct auth_principal *p;
    const struct tasks__task *row;
    struct bh_arena *a; /* the request's: the stored task is read into it */
    struct tasks__task *out;
    const char *request_id, *trace_id;
    int rc;
    bool alone; /* not done by the batch: create it alone */
};

/* Counts a batch of n creates for /metrics (sizes in powers of two). */
static void count_batch(int n)
{
    static const char *const labels[] = {"size=\"1\"",   "size=\"2\"",    "size=\"3-4\"",
                                         "size=\"5-8\"", "size=\"9-16\"", "size=\"17-32\""};
    static struct bh_counter *by_size[sizeof labels / sizeof labels[0]];
    static struct bh_counter *items;
    int k = 0; /* only the leader counts: the combiner orders these */
    while (k < 5 && n > (1 << k))
        k++;
    if (!by_size[k])
        by_size[k] =
            bh_counter_get("bulkhead_tasks_create_batches_total",
                           "Transactions that created tasks, by creates in them.", labels[k]);
    if (!items)
        items = bh_counter_get("bulkhead_tasks_create_batched_total",
                               "Task creates run in those transactions.", "");
    bh_counter_add(by_size[k], 1);
    bh_counter_add(items, (uint64_t)n);
}

static void settle(struct create_item *const *it, int n, int rc)
{
    for (int i = 0; i < n; i++)
        it[i]->rc = rc;
}

/* The distinct orgs of items it[0..n-1] into orgs; org_of[i] is item i's
 * index there. Returns how many. */
static int distinct_orgs(struct create_item *const *it, int n, bh_uuid *orgs, int *org_of)
{
    int n_orgs = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < n_orgs && strcmp(orgs[k].str, it[i]->p->org_id.str) != 0)
            k++;
        if (k == n_orgs)
            orgs[n_orgs++] = it[i]->p->org_id;
        org_of[i] = k;
    }
    return n_orgs;
}

/* Writes the batch's creates run[0..m-1] on tx (which it ends): the tasks
 * in one statement, their events in one, COMMIT; then each org's lists are
 * invalidated once, before any of the requests is answered. */
static void batch_write(struct bh_tx *tx, struct create_item *const *run, int m)
{
    struct tasks__task_row rows[BATCH_MAX];
    struct tasks__created events[BATCH_MAX];
    for (int i = 0; i < m; i++) {
        rows[i] = (struct tasks__task_row){.in = run[i]->row, .a = run[i]->a, .out = run[i]->out};
        events[i] = (struct tasks__created){.task = run[i]->out,
                                            .actor_id = run[i]->p->user_id.str,
                                            .request_id = run[i]->request_id,
                                            .trace_id = run[i]->trace_id};
    }
    int rc = tasks__repo_task_insert_many(tx, rows, m);
    if (rc == BH_EINVAL || rc == BH_ECONFLICT) {
        /* One of the rows was refused: each is created alone instead,
         * which gives every request its own answer. */
        bh_tx_rollback(tx);
        for (int i = 0; i < m; i++)
            run[i]->alone = true;
        return;
    }
    if (rc == 0)
        rc = tasks__emit_created_many(tx, events, m);
    if (rc != 0) {
        bh_tx_rollback(tx);
        settle(run, m, rc);
        return;
    }
    rc = bh_tx_commit(tx);
    settle(run, m, rc);
    bh_uuid orgs[BATCH_MAX];
    int org_of[BATCH_MAX];
    int n_orgs = rc == 0 ? distinct_orgs(run, m, orgs, org_of) : 0;
    if (n_orgs > 0)
        tasks__list_cache_invalidate_many(orgs, n_orgs);
}

/* The combiner's batch: see the top of this section. Runs on the thread of
 * one of the requests while the others wait. */
static void create_batch(void *ctx, void *const *items, int n)
{
    (void)ctx;
    struct create_item *it[BATCH_MAX] = {0}, *run[BATCH_MAX];
    bh_uuid orgs[BATCH_MAX];
    int org_of[BATCH_MAX], m = 0;
    for (int i = 0; i < n; i++)
        it[i] = items[i];
    int n_orgs = distinct_orgs(it, n, orgs, org_of);
    count_batch(n);
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0) {
        settle(it, n, rc);
        return;
    }
    struct billing_limit limits[BATCH_MAX];
    rc = billing_limits(tx, orgs, n_orgs, BILLING_RESOURCE_TASKS, limits);
    if (rc != 0) {
        bh_tx_rollback(tx);
        settle(it, n, rc);
        return;
    }
    for (int k = 0; k < n_orgs; k++)
        hint_set(&orgs[k], limits[k].limit != BILLING_UNLIMITED);
    /* Creates under a limit leave the batch: they are counted, alone. */
    for (int i = 0; i < n; i++) {
        it[i]->alone = limits[org_of[i]].limit != BILLING_UNLIMITED;
        if (!it[i]->alone)
            run[m++] = it[i];
    }
    if (m == 0)
        bh_tx_rollback(tx);
    else
        batch_write(tx, run, m);
}

static struct bh_combiner *creates;
static pthread_once_t creates_once = PTHREAD_ONCE_INIT;

static void waiting_gauge(struct bh_buf *out, void *arg)
{
    (void)arg;
    bh_metrics_printf(out, "bulkhead_tasks_creates_waiting %d\n", bh_combiner_waiting(creates));
}

static void creates_init(void)
{
    /* Lives as long as the process; NULL (no memory) means every create
     * goes alone. */
    creates = bh_combiner_new(BATCH_MAX, create_batch, NULL);
    if (creates)
        bh_gauge_register("bulkhead_tasks_creates_waiting",
                          "Task creates waiting for the transaction in flight to end.",
                          waiting_gauge, NULL);
}

int tasks__task_create(const struct auth_principal *p, const struct tasks__task_input *in,
                       struct bh_arena *a, struct tasks__task *out, struct bh_refusal *fault)
{
    int rc = check_assignee(p, in->assignee_id, fault);
    if (rc != 0)
        return rc;
    bh_uuid id = bh_uuid_v7();
    const struct tasks__task t = {
        .id = id.str,
        .org_id = p->org_id.str,
        .project_id = in->project_id,
        .title = in->title,
        .description = in->description,
        .priority = in->priority ? in->priority : "normal",
        .assignee_id = in->assignee_id,
        .due_at = in->due_at,
        .created_by = p->user_id.str,
    };
    pthread_once(&creates_once, creates_init);
    if (!creates || hint_limited(&p->org_id))
        return create_alone(p, &t, a, out, fault);
    struct create_item item = {.p = p, .row = &t, .a = a, .out = out};
    bh_log_context_get(&item.request_id, &item.trace_id);
    bh_combine(creates, &item);
    return item.alone ? create_alone(p, &t, a, out, fault) : item.rc;
}

/* ------------------------------------------------------------------- read */

/* A cache entry is "<version> <org_id> <json>". An entry of another org is
 * a miss for this caller: 404, exactly as Postgres would answer. */
static int view_from_entry(const char *org_id, const char *entry, size_t len,
                           struct tasks__task_view *out)
{
    char *end = NULL;
    long long version = strtoll(entry, &end, 10);
    if (end == entry || *end != ' ' || (size_t)(end - entry) + 38 > len || end[37] != ' ')
        return BH_EINVAL;
    if (strncmp(end + 1, org_id, 36) != 0)
        return BH_ENOTFOUND;
    out->version = version;
    out->json = end + 38;
    out->len = len - (size_t)(out->json - entry);
    out->cache = TASKS__CACHE_HIT;
    return 0;
}

/* Reads the task from Postgres; with a lease token, fills the cache. */
static int load(struct bh_arena *a, const char *org_id, const char *id, const char *token,
                enum tasks__cache_result result, struct tasks__task_view *out)
{
    struct tasks__task t;
    tasks__cache_count_load();
    int rc = tasks__repo_task_find(NULL, a, org_id, id, false, &t);
    if (rc != 0) {
        /* Nothing to fill: free the key at once, or other readers of this
         * id would wait out the lease. */
        if (token)
            tasks__cache_release(id, token);
        return rc;
    }
    json_t *j = tasks__task_json(&t);
    char *json = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!json)
        return BH_ENOMEM;
    char *entry = bh_arena_printf(a, "%" PRId64 " %s %s", t.version, t.org_id, json);
    free(json);
    if (!entry)
        return BH_ENOMEM;
    size_t len = strlen(entry);
    if (token)
        tasks__cache_fill(id, token, entry, len);
    rc = view_from_entry(org_id, entry, len, out);
    out->cache = result;
    return rc;
}

int tasks__task_read(struct bh_arena *a, const char *org_id, const char *id,
                     struct tasks__task_view *out)
{
    const char *entry = NULL;
    size_t len = 0;
    int rc = tasks__cache_get(a, id, &entry, &len);
    if (rc == 0 && (rc = view_from_entry(org_id, entry, len, out)) != BH_EINVAL)
        goto out;
    if (rc == BH_EUNAVAILABLE) {
        rc = load(a, org_id, id, NULL, TASKS__CACHE_BYPASS, out);
        goto out;
    }
    /* A miss: one reader per key fills it (the lease); the others poll for
     * its result briefly instead of all querying Postgres at once. */
    for (int attempt = 0; attempt < LEASE_WAITS; attempt++) {
        char token[33];
        rc = tasks__cache_lease(id, token);
        if (rc == 0) {
            rc = load(a, org_id, id, token, TASKS__CACHE_MISS, out);
            goto out;
        }
        if (rc == BH_EUNAVAILABLE)
            break;
        bh_sleep_ms(LEASE_POLL_MS);
        rc = tasks__cache_get(a, id, &entry, &len);
        if (rc == 0 && (rc = view_from_entry(org_id, entry, len, out)) != BH_EINVAL)
            goto out;
        if (rc == BH_EUNAVAILABLE)
            break;
    }
    /* Redis went away, or the filler is slow: answer from Postgres. */
    rc = load(a, org_id, id, NULL, rc == BH_EUNAVAILABLE ? TASKS__CACHE_BYPASS : TASKS__CACHE_MISS,
              out);
out:
    if (rc == 0)
        tasks__cache_count(out->cache);
    return rc;
}

/* ----------------------------------------------------------------- update */

/* Applies the sent fields of in to next; false when nothing changes. */
static bool apply(struct tasks__task *next, const struct tasks__task_input *in)
{
    struct tasks__task before = *next;
    if (in->has_title)
        next->title = in->title;
    if (in->has_description)
        next->description = in->description ? in->description : "";
    if (in->has_status)
        next->status = in->status;
    if (in->has_priority)
        next->priority = in->priority;
    if (in->has_project)
        next->project_id = in->project_id;
    if (in->has_assignee)
        next->assignee_id = in->assignee_id;
    if (in->has_due)
        next->due_at = in->due_at;
    return !str_eq(before.title, next->title) || !str_eq(before.description, next->description) ||
           !str_eq(before.status, next->status) || !str_eq(before.priority, next->priority) ||
           !str_eq(before.project_id, next->project_id) ||
           !str_eq(before.assignee_id, next->assignee_id) || !str_eq(before.due_at, next->due_at);
}

/* The events a change publishes: always task.updated, and the ones
 * consumers act on when the assignee or the status moved. */
static int emit_changes(struct bh_tx *tx, const struct tasks__task *before,
                        const struct tasks__task *after, const char *actor)
{
    int rc = tasks__emit_task(tx, "task.updated", after, actor);
    if (rc == 0 && after->assignee_id && !str_eq(before->assignee_id, after->assignee_id))
        rc = tasks__emit_task(tx, "task.assigned", after, actor);
    if (rc == 0 && !str_eq(before->status, after->status)) {
        if (strcmp(after->status, "done") == 0)
            rc = tasks__emit_task(tx, "task.completed", after, actor);
        else if (strcmp(before->status, "done") == 0)
            rc = tasks__emit_task(tx, "task.reopened", after, actor);
    }
    return rc;
}

int tasks__task_update(const struct auth_principal *p, const char *id,
                       const struct tasks__task_input *in, const char *if_match, struct bh_arena *a,
                       struct tasks__task *out, struct bh_refusal *fault)
{
    int rc = in->has_assignee ? check_assignee(p, in->assignee_id, fault) : 0;
    if (rc != 0)
        return rc;
    struct bh_tx *tx = NULL;
    rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    struct tasks__task cur, next;
    rc = tasks__repo_task_find(tx, a, p->org_id.str, id, true, &cur);
    if (rc != 0)
        goto out_rollback;
    if (if_match && !tasks__etag_matches(if_match, cur.version, false)) {
        rc = BH_EPRECONDITION;
        goto out_rollback;
    }
    next = cur;
    if (!apply(&next, in)) { /* nothing to change: no new version, no event */
        *out = cur;
        bh_tx_rollback(tx);
        return 0;
    }
    if (!tasks__transition_allowed(cur.status, next.status)) {
        fault->field = "status";
        fault->code = "invalid_transition";
        fault->detail =
            bh_arena_printf(a, "A task cannot move from %s to %s.", cur.status, next.status);
        rc = BH_EUNPROCESSABLE;
        goto out_rollback;
    }
    rc = tasks__repo_task_update(tx, a, &next, p->user_id.str, out);
    if (rc == BH_EUNPROCESSABLE) {
        fault->field = "project_id";
        fault->detail = "is not a project of this organization";
    }
    if (rc == 0)
        rc = emit_changes(tx, &cur, out, p->user_id.str);
    if (rc != 0)
        goto out_rollback;
    rc = bh_tx_commit(tx);
    if (rc == 0) {
        tasks__cache_invalidate(id);
        tasks__list_cache_invalidate(p->org_id.str);
    }
    return rc;

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

/* ----------------------------------------------------------------- delete */

int tasks__task_delete(const struct auth_principal *p, const char *id, const char *if_match,
                       struct bh_arena *a)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    struct tasks__task cur;
    rc = tasks__repo_task_find(tx, a, p->org_id.str, id, true, &cur);
    if (rc != 0)
        goto out_rollback;
    if (if_match && !tasks__etag_matches(if_match, cur.version, false)) {
        rc = BH_EPRECONDITION;
        goto out_rollback;
    }
    /* Members delete their own tasks; admins and owners any task. */
    if (p->role < AUTH_ROLE_ADMIN && strcmp(cur.created_by, p->user_id.str) != 0) {
        rc = BH_EFORBIDDEN;
        goto out_rollback;
    }
    rc = tasks__repo_task_delete(tx, p->org_id.str, id);
    if (rc == 0)
        rc = tasks__emit_task_deleted(tx, &cur, p->user_id.str);
    if (rc != 0)
        goto out_rollback;
    rc = bh_tx_commit(tx);
    if (rc == 0) {
        tasks__cache_invalidate(id);
        tasks__list_cache_invalidate(p->org_id.str);
    }
    return rc;

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

/* ------------------------------------------------------------------- list */

int tasks__task_list(struct bh_arena *a, const struct tasks__task_filter *f,
                     struct tasks__task **out, int *n, const char **next_cursor)
{
    *next_cursor = NULL;
    /* A project filter names a project of this org, or nothing exists. */
    if (f->project_id) {
        struct tasks__project project;
        int rc = tasks__repo_project_find(NULL, a, f->org_id, f->project_id, false, &project);
        if (rc != 0)
            return rc;
    }
    int rc = tasks__repo_task_list(a, f, out, n);
    if (rc != 0)
        return rc;
    if (*n > f->limit) {
        *n = f->limit;
        const struct tasks__task *last = &(*out)[f->limit - 1];
        *next_cursor = bh_cursor_encode(a, last->created_at, last->id);
        if (!*next_cursor)
            return BH_ENOMEM;
    }
    return 0;
}
