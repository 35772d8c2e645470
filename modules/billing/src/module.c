/* The billing module's descriptor: what the composition root mounts and
 * runs. It wires the module's parts together and holds no rule itself. */
#include "billing/billing.h"
#include "internal.h"

static const struct bh_route routes[] = {
    {"GET", "/v1/plans", billing__http_get_plans, 0},
};

const struct bh_module billing_module = {
    .name = "billing",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
};
