/* The router: routes mounted by module, matched segment by segment with
 * path parameters ("{org}"), and the methods a path allows (for 405). Only
 * the composition root mounts, before the server starts; matching never
 * allocates outside the request's arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "platform/err.h"

static struct route_entry routes[MAX_ROUTES];
static size_t n_routes;
static struct bh_mounted_route mounted[MAX_ROUTES];

static int split_path(char *path, char **segs, int max)
{
    int n = 0;
    for (char *save = NULL, *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        segs[n++] = s;
    }
    return n;
}

int bh_server_mount(const char *module, const struct bh_route *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (n_routes == MAX_ROUTES)
            return BH_EINVAL;
        for (size_t j = 0; j < n_routes; j++)
            if (strcmp(routes[j].m.route.pattern, rs[i].pattern) == 0 &&
                strcmp(routes[j].m.route.method, rs[i].method) == 0)
                return BH_ECONFLICT;
        struct route_entry *e = &routes[n_routes];
        char *copy = strdup(rs[i].pattern);
        if (!copy)
            return BH_ENOMEM;
        char *segs[MAX_SEGMENTS];
        int ns = split_path(copy, segs, MAX_SEGMENTS);
        if (ns < 0 || rs[i].pattern[0] != '/') {
            free(copy);
            return BH_EINVAL;
        }
        for (int k = 0; k < ns; k++)
            e->segments[k] = strdup(segs[k]);
        free(copy);
        e->n_segments = ns;
        e->m.module = module;
        e->m.route = rs[i];
        char labels[300];
        snprintf(labels, sizeof labels, "module=\"%s\",method=\"%s\",route=\"%s\"", module,
                 rs[i].method, rs[i].pattern);
        e->latency = bh_histogram_get("bulkhead_http_request_duration_seconds",
                                      "Time from request start to reply, by route.", labels);
        mounted[n_routes] = e->m;
        n_routes++;
    }
    return 0;
}

size_t bh_server_routes(const struct bh_mounted_route **out)
{
    *out = mounted;
    return n_routes;
}

static bool route_matches(const struct route_entry *e, char **segs, int ns, struct bh_req *req)
{
    if (e->n_segments != ns)
        return false;
    int np = 0;
    for (int i = 0; i < ns; i++) {
        const char *p = e->segments[i];
        if (p[0] == '{') {
            if (np < MAX_PARAMS && req) {
                req->param_names[np] = p;
                req->param_values[np] = segs[i];
                np++;
            }
        } else if (strcmp(p, segs[i]) != 0) {
            return false;
        }
    }
    if (req)
        req->n_params = np;
    return true;
}

/* Adds method to the Allow list once. */
static void allow_add(char *methods, size_t size, const char *method)
{
    size_t len = strlen(methods), n = strlen(method);
    for (const char *p = methods; (p = strstr(p, method)) != NULL; p += n)
        if ((p == methods || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(methods + len, size - len, "%s%s", len ? ", " : "", method);
}

/* Finds the route for method and path. On a path match with another method,
 * *allow receives the methods that exist (arena text) and NULL is returned. */
struct route_entry *bh__route_find(struct bh_req *req, const char **allow)
{
    *allow = NULL;
    char *copy = bh_arena_strdup(req->arena, req->path);
    if (!copy)
        return NULL;
    char *segs[MAX_SEGMENTS];
    int ns = split_path(copy, segs, MAX_SEGMENTS);
    if (ns < 0)
        return NULL;
    char methods[128] = "";
    bool is_head = strcmp(req->method, "HEAD") == 0;
    for (size_t i = 0; i < n_routes; i++) {
        struct route_entry *e = &routes[i];
        if (!route_matches(e, segs, ns, NULL))
            continue;
        /* HEAD is served wherever GET is (RFC 9110 9.3.2): the GET handler
         * runs and libmicrohttpd sends its headers without the body. */
        const char *m = e->m.route.method;
        if (strcmp(m, req->method) == 0 || (strcmp(m, "GET") == 0 && is_head)) {
            route_matches(e, segs, ns, req);
            return e;
        }
        allow_add(methods, sizeof methods, m);
        if (strcmp(m, "GET") == 0)
            allow_add(methods, sizeof methods, "HEAD");
    }
    if (methods[0])
        *allow = bh_arena_strdup(req->arena, methods);
    return NULL;
}
