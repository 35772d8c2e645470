/* The JSON shapes of projects, tasks and comments (BLUEPRINT §5): the one
 * place that names their fields, so the API, the cache and the events never
 * disagree. Never renders anything the caller may not see. */
#include "internal.h"

json_t *tasks__json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *tasks__task_json(const struct tasks__task *t)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "org_id", json_string(t->org_id));
    json_object_set_new(o, "project_id", tasks__json_str_or_null(t->project_id));
    json_object_set_new(o, "title", json_string(t->title));
    json_object_set_new(o, "description", json_string(t->description ? t->description : ""));
    json_object_set_new(o, "status", json_string(t->status));
    json_object_set_new(o, "priority", json_string(t->priority));
    json_object_set_new(o, "assignee_id", tasks__json_str_or_null(t->assignee_id));
    json_object_set_new(o, "due_at", tasks__json_str_or_null(t->due_at));
    json_object_set_new(o, "created_by", json_string(t->created_by));
    json_object_set_new(o, "created_at", json_string(t->created_at));
    json_object_set_new(o, "updated_at", json_string(t->updated_at));
    json_object_set_new(o, "completed_at", tasks__json_str_or_null(t->completed_at));
    json_object_set_new(o, "version", json_integer(t->version));
    return o;
}

json_t *tasks__project_json(const struct tasks__project *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", p->id, "org_id", p->org_id, "name",
                     p->name, "created_by", p->created_by, "created_at", p->created_at,
                     "updated_at", p->updated_at);
}

json_t *tasks__comment_json(const struct tasks__comment *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", c->id, "task_id", c->task_id, "author_id",
                     c->author_id, "body", c->body, "created_at", c->created_at);
}
