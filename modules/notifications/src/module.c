/* The notifications module's descriptor: what the composition root mounts and runs. */
#include "notifications/notifications.h"

const struct bh_module notifications_module = {
    .name = "notifications",
};
