/* The events the tasks module publishes (docs/events.md), each inserted into
 * the outbox on the transaction of the change it describes. The module
 * consumes no events. Never publish outside the change's transaction. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/outbox.h"

const char *const tasks__emits[] = {
    "task.created", "task.updated",   "task.assigned",   "task.completed",  "task.reopened",
    "task.deleted", "task.commented", "project.created", "project.renamed", "project.deleted",
    NULL,
};

/* The state every task event carries, plus who did what for the types
 * whose consumers need it (notifications tells the creator who completed).
 * NULL on OOM. */
static json_t *task_data(const char *type, const struct tasks__task *t, const char *actor_id)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    json_object_set_new(d, "task_id", json_string(t->id));
    json_object_set_new(d, "org_id", json_string(t->org_id));
    json_object_set_new(d, "title", json_string(t->title));
    json_object_set_new(d, "created_by", json_string(t->created_by));
    json_object_set_new(d, "assignee_id", tasks__json_str_or_null(t->assignee_id));
    json_object_set_new(d, "project_id", tasks__json_str_or_null(t->project_id));
    json_object_set_new(d, "status", json_string(t->status));
    json_object_set_new(d, "priority", json_string(t->priority));
    json_object_set_new(d, "version", json_integer(t->version));
    if (strcmp(type, "task.completed") == 0)
        json_object_set_new(d, "completed_by", json_string(actor_id));
    else if (strcmp(type, "task.reopened") == 0)
        json_object_set_new(d, "reopened_by", json_string(actor_id));
    else if (strcmp(type, "task.assigned") == 0)
        json_object_set_new(d, "assigned_by", json_string(actor_id));
    return d;
}

int tasks__emit_task(struct bh_tx *tx, const char *type, const struct tasks__task *t,
                     const char *actor_id)
{
    return bh_outbox_publish_take(tx, type, t->org_id, actor_id, t->id,
                                  task_data(type, t, actor_id));
}

int tasks__emit_created_many(struct bh_tx *tx, const struct tasks__created *c, int n)
{
    /* Two events at most per task, in the order a single create emits them. */
    struct bh_outbox_event *ev = calloc((size_t)n * 2, sizeof *ev);
    int m = 0, rc = ev ? 0 : BH_ENOMEM;
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct tasks__task *t = c[i].task;
        for (int k = 0; k < 2; k++) {
            const char *type = k == 0 ? "task.created" : "task.assigned";
            if (k == 1 && !t->assignee_id)
                break;
            ev[m] = (struct bh_outbox_event){.type = type,
                                             .org_id = t->org_id,
                                             .actor_id = c[i].actor_id,
                                             .aggregate_id = t->id,
                                             .data = task_data(type, t, c[i].actor_id),
                                             .request_id = c[i].request_id,
                                             .trace_id = c[i].trace_id};
            if (!ev[m++].data) {
                rc = BH_ENOMEM;
                break;
            }
        }
    }
    if (rc == 0)
        rc = bh_outbox_publish_many(tx, ev, m);
    for (int i = 0; ev && i < m; i++)
        json_decref((json_t *)ev[i].data);
    free(ev);
    return rc;
}

int tasks__emit_task_deleted(struct bh_tx *tx, const struct tasks__task *t, const char *actor_id)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "task_id", t->id, "org_id", t->org_id,
                          "title", t->title, "created_by", t->created_by, "deleted_by", actor_id,
                          "assignee_id", tasks__json_str_or_null(t->assignee_id));
    return bh_outbox_publish_take(tx, "task.deleted", t->org_id, actor_id, t->id, d);
}

int tasks__emit_commented(struct bh_tx *tx, const struct tasks__task *t,
                          const struct tasks__comment *c)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "task_id", t->id, "org_id",
                          t->org_id, "comment_id", c->id, "author_id", c->author_id, "assignee_id",
                          tasks__json_str_or_null(t->assignee_id), "created_by", t->created_by,
                          "title", t->title);
    return bh_outbox_publish_take(tx, "task.commented", t->org_id, c->author_id, t->id, d);
}

int tasks__emit_project(struct bh_tx *tx, const char *type, const struct tasks__project *p,
                        const char *actor_id)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s}", "project_id", p->id, "org_id", p->org_id, "name", p->name);
    return bh_outbox_publish_take(tx, type, p->org_id, actor_id, p->id, d);
}
