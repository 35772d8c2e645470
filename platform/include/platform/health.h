/* Platform routes: liveness, readiness (Postgres per module pool, Redis per
 * ACL user) and Prometheus metrics. */
#ifndef BH_PLATFORM_HEALTH_H
#define BH_PLATFORM_HEALTH_H

#include <stddef.h>

#include "platform/http.h"

/* The names checked by /health/ready (borrowed for the process lifetime). */
void bh_health_init(const char *const *modules, int n_modules);

extern const struct bh_route bh_health_routes[];
extern const size_t bh_health_routes_count;

#endif
