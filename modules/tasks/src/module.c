/* The tasks module's descriptor: what the composition root mounts and runs. */
#include "tasks/tasks.h"

const struct bh_module tasks_module = {
    .name = "tasks",
};
