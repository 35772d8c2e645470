/* Platform routes: liveness, readiness (Postgres per module pool, Redis per
 * ACL user) and Prometheus metrics. */
#ifndef BH_PLATFORM_HEALTH_H
#define BH_PLATFORM_HEALTH_H

#include <stddef.h>

#include "platform/http.h"

/* The names checked by /health/ready (borrowed for the process lifetime). */
void bh_health_init(const char *const *modules, int n_modules);

/* Runs every readiness check once, now, each on a thread of its own, so the
 * first connection of every Postgres pool and Redis user opens in parallel
 * with the others and with the rest of the start-up. Returns at once (0, or
 * BH_ENOMEM / BH_EINVAL when called twice); logs "warm-up: ..." when done.
 * Until then /health/ready waits for it (within its own budget). Call after
 * bh_health_init(), bh_db_init() and bh_redis_init(). */
int bh_health_warm_up(void);

/* Returns once the warm-up is over (at once when there is none): work
 * that can wait, started after it, reuses the connections it opened
 * instead of opening more while the first ones open. */
void bh_health_warm_wait(void);

/* Waits for the warm-up's threads (if any) and frees them: call before
 * bh_db_shutdown() and bh_redis_shutdown(). */
void bh_health_shutdown(void);

extern const struct bh_route bh_health_routes[];
extern const size_t bh_health_routes_count;

#endif
