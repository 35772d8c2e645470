/* The module contract: every module exports exactly one descriptor (in its
 * public header) and the composition root (app/main.c) does the rest:
 * init, mount routes, register event subscriptions, shutdown. */
#ifndef BH_PLATFORM_MODULE_H
#define BH_PLATFORM_MODULE_H

#include <stddef.h>

#include "platform/events.h"
#include "platform/http.h"

struct bh_module {
    const char *name;              /* also its schema, role suffix and key prefix */
    int (*init)(void);             /* 0 or a negative bh_err; may be NULL */
    const struct bh_route *routes; /* may be NULL */
    size_t n_routes;
    const struct bh_subscription *subscriptions; /* events it consumes; may be NULL */
    size_t n_subscriptions;
    const struct bh_job_type *job_types; /* jobs it runs (besides events); may be NULL */
    size_t n_job_types;
    const char *const *emits; /* event types it publishes, NULL-terminated; may be NULL */
    void (*shutdown)(void);   /* may be NULL */
};

#endif
