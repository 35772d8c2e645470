/* Self-description: `bulkhead routes`, `bulkhead modules`, GET /openapi.json
 * and GET /_modules (the module graph plus the fences as they are in force:
 * the link seal recorded at build time, the schema privileges Postgres
 * grants right now, and a live probe of each module's Redis ACL). */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/redis.h"
#include "platform/server.h"

extern const char bh_openapi_json[];
extern const size_t bh_openapi_json_len;

static const struct bh_module *const *known;
static size_t n_known;

void bh_app_set_modules(const struct bh_module *const *modules, size_t n)
{
    known = modules;
    n_known = n;
}

int bh_app_print_routes(void)
{
    const struct bh_mounted_route *rs;
    size_t n = bh_server_routes(&rs);
    printf("%-7s %-48s %s\n", "METHOD", "ROUTE", "MODULE");
    for (size_t i = 0; i < n; i++)
        printf("%-7s %-48s %s\n", rs[i].route.method, rs[i].route.pattern, rs[i].module);
    return 0;
}

static const struct bh_module_info *info_for(const char *name)
{
    for (unsigned i = 0; i < bh_module_info_count; i++)
        if (strcmp(bh_module_info[i].name, name) == 0)
            return &bh_module_info[i];
    return NULL;
}

static const char *depends_of(const char *name)
{
    for (unsigned i = 0; i < bh_manifest_count; i++)
        if (strcmp(bh_manifest[i].name, name) == 0)
            return bh_manifest[i].depends;
    return "";
}

static void print_mermaid(const struct bh_module *const *modules, size_t n)
{
    printf("```mermaid\ngraph TD\n");
    for (size_t i = 0; i < n; i++) {
        char deps[256];
        snprintf(deps, sizeof deps, "%s", depends_of(modules[i]->name));
        printf("    %s[%s]\n", modules[i]->name, modules[i]->name);
        for (char *save = NULL, *d = strtok_r(deps, " ", &save); d; d = strtok_r(NULL, " ", &save))
            printf("    %s --> %s\n", modules[i]->name, d);
        printf("    %s --> platform\n", modules[i]->name);
    }
    /* Events: publisher -. type .-> consumer, matched by type string. */
    for (size_t p = 0; p < n; p++) {
        for (const char *const *e = modules[p]->emits; e && *e; e++)
            for (size_t c = 0; c < n; c++)
                for (size_t s = 0; s < modules[c]->n_subscriptions; s++)
                    if (strcmp(modules[c]->subscriptions[s].event_type, *e) == 0)
                        printf("    %s -. \"%s\" .-> %s\n", modules[p]->name, *e, modules[c]->name);
    }
    printf("```\n");
}

int bh_app_print_modules(const struct bh_module *const *modules, size_t n, bool mermaid_only)
{
    if (mermaid_only) {
        print_mermaid(modules, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const struct bh_module *m = modules[i];
        const struct bh_module_info *info = info_for(m->name);
        const char *deps = depends_of(m->name);
        printf("%s\n", m->name);
        printf("  depends on:  %s\n", deps[0] ? deps : "(platform only)");
        printf("  public API:  %s\n", info && info->symbols[0] ? info->symbols : "-");
        printf("  tables:      %s\n", info && info->tables[0] ? info->tables : "-");
        printf("  routes:     ");
        for (size_t r = 0; r < m->n_routes; r++)
            printf("%s%-6s %s\n", r ? "               " : " ", m->routes[r].method,
                   m->routes[r].pattern);
        printf("%s  emits:      ", m->n_routes ? "" : " -\n");
        int k = 0;
        for (const char *const *e = m->emits; e && *e; e++, k++)
            printf(" %s", *e);
        printf("%s\n  consumes:   ", k ? "" : " -");
        for (size_t s = 0; s < m->n_subscriptions; s++)
            printf(" %s", m->subscriptions[s].event_type);
        printf("%s\n\n", m->n_subscriptions ? "" : " -");
    }
    print_mermaid(modules, n);
    return 0;
}

static int openapi(struct bh_req *req)
{
    return bh_reply_raw(req, 200, "application/json", bh_openapi_json, bh_openapi_json_len);
}

static const char privileges_sql[] =
    "SELECT r.rolname, n.nspname, has_schema_privilege(r.rolname, n.nspname, 'USAGE') "
    "FROM pg_roles r CROSS JOIN pg_namespace n "
    "WHERE r.rolname LIKE 'bh\\_%' AND n.nspname IN "
    "(SELECT substr(rolname, 4) FROM pg_roles WHERE rolname LIKE 'bh\\_%') "
    "ORDER BY 1, 2";

/* GET /_modules: the graph, and each fence as it is right now. */
static int modules_route(struct bh_req *req)
{
    json_t *out = json_object(), *mods = json_array();
    for (size_t i = 0; i < n_known; i++) {
        const struct bh_module *m = known[i];
        const struct bh_module_info *info = info_for(m->name);
        json_t *routes = json_array(), *emits = json_array(), *consumes = json_array();
        for (size_t r = 0; r < m->n_routes; r++)
            json_array_append_new(routes,
                                  json_sprintf("%s %s", m->routes[r].method, m->routes[r].pattern));
        for (const char *const *e = m->emits; e && *e; e++)
            json_array_append_new(emits, json_string(*e));
        for (size_t s = 0; s < m->n_subscriptions; s++)
            json_array_append_new(consumes, json_string(m->subscriptions[s].event_type));
        /* Fence 4, probed: this module's user reading another module's key. */
        json_t *redis = json_object();
        for (size_t j = 0; j < n_known; j++) {
            if (j == i)
                continue;
            redisReply *reply = NULL;
            int rc = bh_redis_as(m->name, &reply, "EXISTS %s:fence-probe", known[j]->name);
            if (reply)
                freeReplyObject(reply);
            json_object_set_new(redis, known[j]->name,
                                json_string(rc == BH_EFORBIDDEN ? "denied"
                                            : rc == 0           ? "ALLOWED"
                                                                : "unknown (redis unavailable)"));
        }
        json_array_append_new(
            mods, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:{s:s, s:o}}", "name", m->name,
                            "depends_on", depends_of(m->name), "public_api",
                            info ? info->symbols : "", "tables", info ? info->tables : "", "routes",
                            routes, "emits", emits, "consumes", consumes, "fences", "link",
                            "sealed at build time (only the public API is global)",
                            "redis_other_modules", redis));
    }
    json_object_set_new(out, "modules", mods);

    /* Fence 3, read from Postgres: which role may use which schema. */
    PGresult *res = NULL;
    json_t *grants = json_object();
    if (bh_db_query_as("platform", &res, privileges_sql, 0, NULL) == 0) {
        for (int r = 0; r < PQntuples(res); r++) {
            const char *role = PQgetvalue(res, r, 0);
            json_t *row = json_object_get(grants, role);
            if (!row) {
                row = json_object();
                json_object_set_new(grants, role, row);
            }
            json_object_set_new(row, PQgetvalue(res, r, 1),
                                json_boolean(strcmp(PQgetvalue(res, r, 2), "t") == 0));
        }
        PQclear(res);
    } else {
        json_object_set_new(grants, "error", json_string("postgres unavailable"));
    }
    json_object_set_new(out, "postgres_schema_usage", grants);
    return bh_reply_json(req, 200, out);
}

const struct bh_route bh_app_routes[] = {
    {"GET", "/openapi.json", openapi, 0},
};
const size_t bh_app_routes_count = sizeof bh_app_routes / sizeof bh_app_routes[0];

const struct bh_route bh_app_dev_routes[] = {
    {"GET", "/_modules", modules_route, BH_ROUTE_OPS},
};
const size_t bh_app_dev_routes_count = sizeof bh_app_dev_routes / sizeof bh_app_dev_routes[0];
