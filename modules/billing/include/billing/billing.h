/* The billing module's public API: entitlements and the subscription that
 * every organization has. Both work on the caller's transaction, so the
 * check and the caller's write commit (or roll back) together. */
#ifndef BILLING_BILLING_H
#define BILLING_BILLING_H

#include <stdint.h>

#include "platform/module.h"
#include "platform/uuid.h"

struct bh_tx;

extern const struct bh_module billing_module;

enum billing_resource { BILLING_RESOURCE_TASKS, BILLING_RESOURCE_MEMBERS };

/* The limit billing_limit() reports for a plan without one. */
enum { BILLING_UNLIMITED = -1 };

/* Sets *limit_out to org_id's effective limit on `resource` (the lower of
 * the current and a scheduled plan), BILLING_UNLIMITED when it has none.
 * Lets a caller learn the limit before it locks anything. Runs on tx under
 * billing's role. */
int billing_limit(struct bh_tx *tx, const bh_uuid *org_id, enum billing_resource resource,
                  int64_t *limit_out);

/* What billing_limits() reports for one organization: its effective limit
 * (as billing_limit()), and the terms it stands on, a text that changes
 * whenever anything the limit derives from changes (the organization's
 * subscription row or a plan row it names). A caller that keeps a count
 * only while a limit applies compares terms to know when its count may have
 * missed a period without limit and must be made again. */
enum { BILLING_TERMS_MAX = 48, BILLING_LIMITS_MAX = 256 };
struct billing_limit {
    int64_t limit;
    char terms[BILLING_TERMS_MAX];
};

/* billing_limit() for n organizations (1..BILLING_LIMITS_MAX) in one
 * statement: out[i] is orgs[i]'s. Runs on tx under billing's role. */
int billing_limits(struct bh_tx *tx, const bh_uuid *orgs, int n, enum billing_resource resource,
                   struct billing_limit *out);

/* May org_id have one more `resource`, given it has `current` now?
 * Returns 0 when allowed, BH_ELIMIT when not (with *limit_out set to the
 * plan's limit), or a bh_err. Runs on tx under billing's role. */
int billing_check_limit(struct bh_tx *tx, const bh_uuid *org_id, enum billing_resource resource,
                        int64_t current, int64_t *limit_out);

/* Creates org_id's subscription to plan_id ("free") on tx. BH_ECONFLICT if
 * the org already has one, BH_EINVAL for an unknown plan. */
int billing_create_subscription(struct bh_tx *tx, const bh_uuid *org_id, const char *plan_id);

#endif
