/* The module contract: every module exports exactly one descriptor (in its
 * public header) and the composition root (app/main.c) does the rest:
 * init, mount routes, register event subscriptions, shutdown. */
#ifndef BH_PLATFORM_MODULE_H
#define BH_PLATFORM_MODULE_H

#include <stdbool.h>
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
    /* Runs once in a process that runs workers (`serve`, `worker`), after
     * they started; never in one-shot commands such as `jobs stats`. Where
     * a module arms its own recurring jobs. May be NULL. */
    void (*workers_started)(void);
};

/* A module's name becomes its schema, its role (bh_<name>), its Redis ACL
 * user and its key prefix, and is interpolated into SET ROLE: [a-z_]{1,31}
 * and nothing else. The platform's own "platform" passes too. */
enum { BH_MODULE_NAME_MAX = 31 };
static inline bool bh_module_name_valid(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return false;
    for (; name[n] != '\0'; n++)
        if (!((name[n] >= 'a' && name[n] <= 'z') || name[n] == '_'))
            return false;
    return n > 0 && n <= BH_MODULE_NAME_MAX;
}

#endif
