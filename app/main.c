/* The composition root: the only place that knows every module. It lists
 * them, initialises the platform, mounts routes, registers subscriptions and
 * runs one of the commands of the `bulkhead` CLI. No business rule lives here. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "billing/billing.h"
#include "notifications/notifications.h"
#include "platform/config.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/health.h"
#include "platform/jobs.h"
#include "platform/log.h"
#include "platform/redis.h"
#include "platform/server.h"
#include "tasks/tasks.h"

#include "app.h"

/* Dependency order: a module comes after the modules it calls. */
static const struct bh_module *const modules[] = {
    &auth_module,
    &billing_module,
    &tasks_module,
    &notifications_module,
};
enum { N_MODULES = sizeof modules / sizeof modules[0] };

static const char *module_names[N_MODULES];

/* Billing takes part in auth's transactions through auth's hooks: auth sits
 * below billing in the module graph and never calls it. */
static int free_subscription(struct bh_tx *tx, const bh_uuid *org_id)
{
    return billing_create_subscription(tx, org_id, "free");
}

static int member_seats(struct bh_tx *tx, const bh_uuid *org_id, int64_t current, int64_t *limit)
{
    return billing_check_limit(tx, org_id, BILLING_RESOURCE_MEMBERS, current, limit);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: bulkhead <command>\n"
            "  serve [--no-workers]   run the HTTP API (and, unless told not to, the workers)\n"
            "  worker                 run only the workers and the outbox relay\n"
            "  migrate                apply pending migrations\n"
            "  routes                 list every route with its owning module\n"
            "  modules [--mermaid]    print the module graph\n"
            "  jobs stats|dead [--queue Q]|retry ID|--all|purge-dead\n");
    return 2;
}

/* Checks that the compiled-in module list is the manifest's, so the fences
 * derived from the manifests describe the modules that really run. */
static int check_manifest(void)
{
    if (bh_manifest_count != N_MODULES)
        goto mismatch;
    for (unsigned i = 0; i < bh_manifest_count; i++) {
        bool found = false;
        for (int j = 0; j < N_MODULES; j++)
            found = found || strcmp(modules[j]->name, bh_manifest[i].name) == 0;
        if (!found)
            goto mismatch;
    }
    return 0;
mismatch:
    bh_log(BH_LOG_ERROR, "platform",
           "app/main.c lists other modules than modules/*/module.cmake declares");
    return BH_EINVAL;
}

static int mount_all(bool dev)
{
    int rc = bh_server_mount("platform", bh_health_routes, bh_health_routes_count);
    if (rc == 0)
        rc = bh_server_mount("platform", bh_app_routes, bh_app_routes_count);
    if (rc == 0 && dev)
        rc = bh_server_mount("platform", bh_app_dev_routes, bh_app_dev_routes_count);
    for (int i = 0; rc == 0 && i < N_MODULES; i++)
        if (modules[i]->routes)
            rc = bh_server_mount(modules[i]->name, modules[i]->routes, modules[i]->n_routes);
    if (rc != 0)
        bh_log(BH_LOG_ERROR, "platform", "mounting routes failed: %s", bh_err_name(rc));
    return rc;
}

/* Connects the platform and initialises every module. With warm_up, the
 * pools' first connections open in parallel while the rest starts. */
static int start_platform(const struct bh_config *cfg, bool warm_up)
{
    const char *users[N_MODULES + 1];
    users[0] = "platform";
    for (int i = 0; i < N_MODULES; i++)
        users[i + 1] = module_names[i];
    int rc = bh_db_init(cfg->database_url, module_names, N_MODULES, cfg->db_pool_size,
                        cfg->db_pool_wait_ms, cfg->db_statement_timeout_ms);
    if (rc == 0)
        rc = bh_redis_init(cfg->redis_url, cfg->redis_password, users, N_MODULES + 1,
                           cfg->redis_timeout_ms);
    if (rc == 0) {
        bh_health_init(module_names, N_MODULES);
        if (warm_up)
            rc = bh_health_warm_up();
    }
    if (rc == 0)
        rc = bh_jobs_init(modules, N_MODULES);
    for (int i = 0; rc == 0 && i < N_MODULES; i++)
        if (modules[i]->init && (rc = modules[i]->init()) != 0)
            bh_log(BH_LOG_ERROR, "platform", "module %s failed to start: %s", modules[i]->name,
                   bh_err_name(rc));
    auth_on_org_created(free_subscription);
    auth_on_seat_check(member_seats);
    return rc;
}

static void stop_platform(void)
{
    for (int i = N_MODULES - 1; i >= 0; i--)
        if (modules[i]->shutdown)
            modules[i]->shutdown();
    bh_health_shutdown();
    bh_redis_shutdown();
    bh_db_shutdown();
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    bh_log(BH_LOG_INFO, "platform", "%s received: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return sig;
}

static int cmd_serve(const struct bh_config *cfg, bool workers, bool http)
{
    int rc = start_platform(cfg, http);
    if (rc == 0 && http)
        rc = mount_all(cfg->dev);
    if (rc == 0 && http)
        rc = bh_server_start(cfg);
    /* The workers (and the relay's LISTEN connection) start once the
     * pools' first connections are open: so they reuse them, and do not
     * take the CPU the first connections' SCRAM exchanges need. */
    if (rc == 0 && workers)
        bh_health_warm_wait();
    if (rc == 0 && workers)
        rc = bh_workers_start();
    for (int i = 0; rc == 0 && workers && i < N_MODULES; i++)
        if (modules[i]->workers_started)
            modules[i]->workers_started();
    if (rc == 0) {
        wait_for_signal();
        int grace = (int)bh_config_int("BULKHEAD_SHUTDOWN_GRACE_MS", 10000, 0, 600000);
        if (http)
            bh_server_stop(grace);
        if (workers)
            bh_workers_stop(grace);
    }
    stop_platform();
    bh_log(BH_LOG_INFO, "platform", "stopped");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    /* glibc gives each thread that allocates an arena of its own (up to
     * 8 per core): with ~40 threads that is memory kept per thread. Two
     * arenas serve two cores; contention stays low because requests
     * allocate from their arena, in few large blocks. */
    mallopt(M_ARENA_MAX, (int)bh_config_int("BULKHEAD_MALLOC_ARENAS", 2, 1, 64));
    /* Signals are taken synchronously by the main thread (sigwait); every
     * thread created from here on inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < N_MODULES; i++)
        module_names[i] = modules[i]->name;
    bh_app_set_modules(modules, N_MODULES);

    const char *cmd = argv[1];
    if (check_manifest() != 0)
        return 1;
    if (strcmp(cmd, "routes") == 0)
        return mount_all(true) == 0 ? bh_app_print_routes() : 1;
    if (strcmp(cmd, "modules") == 0) {
        bool mermaid_only = argc > 2 && strcmp(argv[2], "--mermaid") == 0;
        return bh_app_print_modules(modules, N_MODULES, mermaid_only);
    }

    struct bh_config cfg;
    if (bh_config_load(&cfg) != 0)
        return 1;
    if (strcmp(cmd, "migrate") == 0)
        return bh_db_migrate(cfg.database_url, cfg.migrations_dir, module_names, N_MODULES) == 0
                   ? 0
                   : 1;
    if (strcmp(cmd, "serve") == 0) {
        bool workers = !(argc > 2 && strcmp(argv[2], "--no-workers") == 0);
        return cmd_serve(&cfg, workers, true);
    }
    if (strcmp(cmd, "worker") == 0)
        return cmd_serve(&cfg, true, false);
    if (strcmp(cmd, "jobs") == 0) {
        if (argc < 3)
            return usage();
        if (start_platform(&cfg, false) != 0)
            return 1;
        int status = bh_jobs_cli(argc - 2, argv + 2);
        stop_platform();
        return status;
    }
    return usage();
}
