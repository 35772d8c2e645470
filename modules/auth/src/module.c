/* The auth module's descriptor: what the composition root mounts and runs. */
#include "auth/auth.h"

const struct bh_module auth_module = {
    .name = "auth",
};
