/* Billing's settings, read once from the environment at start and read-only
 * after. A file of its own that calls nothing of the module's, so handlers
 * read them without a call cycle through module.c (which names them). */
#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"

/* BULKHEAD_BILLING_WEBHOOK_SECRET[_FILE]: required in production; in dev a
 * random one per process unless given (scripts/devenv writes one per
 * install). Static storage, read once at init. */
static const char *webhook_secret;
static long webhook_tolerance_s = 300;

const char *billing__webhook_secret(void)
{
    return webhook_secret;
}

long billing__webhook_tolerance_s(void)
{
    return webhook_tolerance_s;
}

int billing__settings_load(void)
{
    if (bh_config_secret("BULKHEAD_BILLING_WEBHOOK_SECRET", &webhook_secret) != 0)
        return BH_EINVAL;
    webhook_tolerance_s = bh_config_int("BULKHEAD_BILLING_WEBHOOK_TOLERANCE_S", 300, 1, 3600);
    return 0;
}
