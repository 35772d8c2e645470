/* The tasks module's public API. Nobody depends on tasks today; its
 * descriptor is all the composition root needs. */
#ifndef TASKS_TASKS_H
#define TASKS_TASKS_H

#include "platform/module.h"

extern const struct bh_module tasks_module;

#endif
