/* Fuzzing the router's path matcher (platform/src/router.c): with the
 * application's route patterns mounted, any method and any path (as the
 * edge hands it: NUL-terminated, up to the request-line limit) must find
 * one route, a 405 with the methods allowed, or nothing, without a crash,
 * an out-of-bounds read or a leak; and what it finds must be consistent:
 * the route's method is the request's (a HEAD may find the GET route),
 * every path parameter is a non-empty segment without '/', and the Allow
 * list never names the request's own method. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "platform/arena.h"
#include "platform/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_handler(struct bh_req *req)
{
    (void)req;
    return 0;
}

#define R(m, p)                                                                                    \
    {                                                                                              \
        m, p, no_handler, 0, NULL                                                                  \
    }
static const struct bh_route routes[] = {
    R("GET", "/health/live"),
    R("GET", "/health/ready"),
    R("GET", "/metrics"),
    R("GET", "/openapi.json"),
    R("GET", "/v1/plans"),
    R("GET", "/v1/me/notifications"),
    R("GET", "/v1/me/notifications/stream"),
    R("POST", "/v1/me/notifications/read-all"),
    R("POST", "/v1/me/notifications/{id}/read"),
    R("GET", "/v1/me/notification-preferences"),
    R("PUT", "/v1/me/notification-preferences"),
    R("GET", "/v1/orgs/{org}/tasks"),
    R("POST", "/v1/orgs/{org}/tasks"),
    R("GET", "/v1/orgs/{org}/tasks/{id}"),
    R("PATCH", "/v1/orgs/{org}/tasks/{id}"),
    R("DELETE", "/v1/orgs/{org}/tasks/{id}"),
    R("GET", "/v1/orgs/{org}/tasks/{id}/comments"),
    R("POST", "/v1/orgs/{org}/tasks/{id}/comments"),
    R("GET", "/v1/orgs/{org}/subscription"),
    R("PUT", "/v1/orgs/{org}/subscription"),
    R("DELETE", "/v1/orgs/{org}/subscription"),
    R("GET", "/v1/orgs/{org}/invoices/{id}"),
    R("POST", "/v1/billing/webhooks/{provider}"),
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int mounted;
    if (!mounted) {
        check(bh_server_mount("fuzz", routes, sizeof routes / sizeof routes[0]) == 0, "mount");
        mounted = 1;
    }
    if (size == 0 || size > 8192)
        return 0;
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    struct bh_req req;
    memset(&req, 0, sizeof req);
    req.arena = bh_arena_new();
    if (!req.arena)
        return 0;
    req.method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    req.path = bh_arena_strndup(req.arena, (const char *)data + 1, size - 1);
    const char *allow = NULL;
    struct route_entry *e = req.path ? bh__route_find(&req, &allow) : NULL;
    if (e) {
        /* HEAD is served by the GET route of the same path (RFC 9110). */
        bool head_on_get = strcmp(req.method, "HEAD") == 0 && strcmp(e->m.route.method, "GET") == 0;
        check(strcmp(e->m.route.method, req.method) == 0 || head_on_get,
              "the route found has the method asked (or is the GET route of a HEAD)");
        check(req.n_params >= 0 && req.n_params <= MAX_PARAMS, "parameters within bounds");
        for (int i = 0; i < req.n_params; i++)
            check(req.param_values[i][0] && !strchr(req.param_values[i], '/'),
                  "a parameter is one non-empty segment");
        check(allow == NULL, "no Allow list beside a match");
    } else if (allow) {
        check(strstr(allow, req.method) == NULL,
              "the Allow list of a 405 does not name the method refused");
    }
    bh_arena_free(req.arena);
    return 0;
}
