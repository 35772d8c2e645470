/* The HTTP server: mounts routes, runs libmicrohttpd with a thread pool, and
 * drains on shutdown. Used only by the composition root (app/). */
#ifndef BH_PLATFORM_SERVER_H
#define BH_PLATFORM_SERVER_H

#include <stddef.h>

#include "platform/config.h"
#include "platform/http.h"

struct bh_mounted_route {
    const char *module;
    struct bh_route route;
};

/* Adds routes owned by module. Returns 0, BH_ECONFLICT when a method and
 * pattern are mounted twice, BH_EINVAL for a malformed pattern. */
int bh_server_mount(const char *module, const struct bh_route *routes, size_t n);
/* All mounted routes, in mount order (borrowed). */
size_t bh_server_routes(const struct bh_mounted_route **out);

/* Starts listening on cfg's address and port. 0 or BH_EUNAVAILABLE. */
int bh_server_start(const struct bh_config *cfg);
/* Stops accepting connections, lets in-flight requests finish for up to
 * grace_ms, then stops. Safe to call when not started. */
void bh_server_stop(int grace_ms);

#endif
