/* The tasks module's descriptor: its routes, the events it publishes and
 * its start-up. What the composition root mounts and runs; no logic here. */
#include "internal.h"
#include "platform/nearcache.h"
#include "tasks/tasks.h"

/* Creates run on a pool of their own. A create may wait for its batch
 * (group commit, docs/adr/0007-group-commit.md) and then for Postgres;
 * meanwhile its connection is parked and holds no HTTP thread, so the
 * requests that thread also serves are not held up behind it. Thirty-two
 * creates at once also make the batches larger than the HTTP threads
 * alone could. */
static struct bh_handler_pool create_pool = {
    .name = "tasks.create", .threads = 32, .queue_max = 512, .max_wait_ms = 5000};

static const struct bh_route routes[] = {
    {"GET", "/v1/orgs/{org}/projects", tasks__http_project_list, 0},
    {"POST", "/v1/orgs/{org}/projects", tasks__http_project_create, 0},
    {"GET", "/v1/orgs/{org}/projects/{id}", tasks__http_project_get, 0},
    {"PATCH", "/v1/orgs/{org}/projects/{id}", tasks__http_project_patch, 0},
    {"DELETE", "/v1/orgs/{org}/projects/{id}", tasks__http_project_delete, 0},
    {"GET", "/v1/orgs/{org}/tasks", tasks__http_task_list, 0},
    {"POST", "/v1/orgs/{org}/tasks", tasks__http_task_create, 0, &create_pool, NULL},
    {"GET", "/v1/orgs/{org}/tasks/{id}", tasks__http_task_get, 0},
    {"PATCH", "/v1/orgs/{org}/tasks/{id}", tasks__http_task_patch, 0},
    {"DELETE", "/v1/orgs/{org}/tasks/{id}", tasks__http_task_delete, 0},
    {"GET", "/v1/orgs/{org}/tasks/{id}/comments", tasks__http_comment_list, 0},
    {"POST", "/v1/orgs/{org}/tasks/{id}/comments", tasks__http_comment_create, 0},
};

static int tasks_init(void)
{
    int rc = tasks__cache_init();
    return rc != 0 ? rc : bh_nearcache_start();
}

static void tasks_shutdown(void)
{
    bh_nearcache_stop();
}

const struct bh_module tasks_module = {
    .name = "tasks",
    .init = tasks_init,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .emits = tasks__emits,
    .shutdown = tasks_shutdown,
};
