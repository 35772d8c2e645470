/* The notifications module's public API: only its descriptor. It learns
 * about the rest of the system through the events it subscribes to. */
#ifndef NOTIFICATIONS_NOTIFICATIONS_H
#define NOTIFICATIONS_NOTIFICATIONS_H

#include "platform/module.h"

extern const struct bh_module notifications_module;

#endif
