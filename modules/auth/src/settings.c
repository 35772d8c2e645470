/* The auth module's settings, read once from the environment at start and
 * read-only after. A file of its own that calls nothing of the module's, so
 * every part can read the settings without a call cycle through module.c. */
#include <stdio.h>

#include "internal.h"
#include "platform/config.h"

struct auth__settings auth__settings;

void auth__settings_load(void)
{
    struct auth__settings *s = &auth__settings;
    snprintf(s->issuer, sizeof s->issuer, "%s", bh_config_str("BULKHEAD_JWT_ISSUER", "bulkhead"));
    snprintf(s->audience, sizeof s->audience, "%s",
             bh_config_str("BULKHEAD_JWT_AUDIENCE", "bulkhead-api"));
    s->access_ttl_s = (int)bh_config_int("BULKHEAD_ACCESS_TOKEN_TTL_S", 900, 10, 86400);
    s->refresh_ttl_s =
        (int)bh_config_int("BULKHEAD_REFRESH_TOKEN_TTL_S", 30 * 86400, 60, 365 * 86400);
    s->refresh_grace_s = (int)bh_config_int("BULKHEAD_REFRESH_GRACE_S", 10, 0, 300);
    s->member_cache_ttl_s = (int)bh_config_int("BULKHEAD_AUTH_MEMBER_CACHE_TTL_S", 60, 1, 3600);
    s->login_account_max = (int)bh_config_int("BULKHEAD_LOGIN_MAX_FAILURES", 5, 1, 1000);
    s->login_addr_max = (int)bh_config_int("BULKHEAD_LOGIN_MAX_FAILURES_PER_ADDR", 100, 1, 100000);
    s->login_window_s = (int)bh_config_int("BULKHEAD_LOGIN_WINDOW_S", 900, 1, 86400);
    s->hash_slots = (int)bh_config_int("BULKHEAD_AUTH_HASH_SLOTS", 2, 1, 64);
    s->hash_queue = (int)bh_config_int("BULKHEAD_AUTH_HASH_QUEUE", 4, 0, 1024);
    s->hash_wait_ms = (int)bh_config_int("BULKHEAD_AUTH_HASH_WAIT_MS", 500, 0, 60000);
    s->hash_per_client = (int)bh_config_int("BULKHEAD_AUTH_HASH_PER_CLIENT", 2, 1, 1024);
    s->opslimit = (unsigned long long)bh_config_int("BULKHEAD_ARGON2_OPSLIMIT", 2, 2, 16);
    s->memlimit =
        (size_t)bh_config_int("BULKHEAD_ARGON2_MEMLIMIT_KIB", 19 * 1024, 19 * 1024, 1024 * 1024) *
        1024;
    s->deny_sync_ms = (int)bh_config_int("BULKHEAD_AUTH_DENY_SYNC_MS", 1000, 50, 60000);
}
