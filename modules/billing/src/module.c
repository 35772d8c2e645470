/* The billing module's descriptor: what the composition root mounts and runs. */
#include "billing/billing.h"

const struct bh_module billing_module = {
    .name = "billing",
};
