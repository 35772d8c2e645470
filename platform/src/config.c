/* Configuration from the environment. Read once at start-up, then read-only.
 * Never prints a secret's value. */
#include "platform/config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/log.h"

static struct bh_config current;
static char generated_secret[65];

const char *bh_config_str(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

long bh_config_int(const char *name, long dflt, long min, long max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        bh_log(BH_LOG_WARN, "platform", "%s=%s is not an integer in [%ld, %ld]; using %ld", name, v,
               min, max, dflt);
        return dflt;
    }
    return n;
}

int bh_config_load(struct bh_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dev = strcmp(bh_config_str("BULKHEAD_ENV", "dev"), "prod") != 0;
    cfg->http_addr = bh_config_str("BULKHEAD_HTTP_ADDR", "127.0.0.1");
    cfg->http_port = (int)bh_config_int("BULKHEAD_HTTP_PORT", 8080, 0, 65535);
    cfg->http_threads = (int)bh_config_int("BULKHEAD_HTTP_THREADS", 8, 1, 256);
    cfg->http_max_connections = (int)bh_config_int("BULKHEAD_HTTP_MAX_CONNECTIONS", 1024, 1, 65536);
    cfg->http_timeout_s = (int)bh_config_int("BULKHEAD_HTTP_TIMEOUT_S", 30, 1, 3600);
    cfg->http_body_limit = bh_config_int("BULKHEAD_HTTP_BODY_LIMIT", 65536, 1024, 16 << 20);
    cfg->database_url = bh_config_str("DATABASE_URL", NULL);
    cfg->db_pool_size = (int)bh_config_int("BULKHEAD_DB_POOL_SIZE", 8, 1, 128);
    cfg->db_pool_wait_ms = (int)bh_config_int("BULKHEAD_DB_POOL_WAIT_MS", 2000, 1, 60000);
    cfg->db_statement_timeout_ms =
        (int)bh_config_int("BULKHEAD_DB_STATEMENT_TIMEOUT_MS", 5000, 10, 600000);
    cfg->redis_url = bh_config_str("REDIS_URL", "redis://127.0.0.1:6379");
    cfg->redis_password = bh_config_str("BULKHEAD_REDIS_PASSWORD", "");
    cfg->redis_timeout_ms = (int)bh_config_int("BULKHEAD_REDIS_TIMEOUT_MS", 500, 10, 60000);
    cfg->migrations_dir = bh_config_str("BULKHEAD_MIGRATIONS_DIR", "migrations");
    cfg->data_dir = bh_config_str("BULKHEAD_DATA_DIR", ".run/data");
    cfg->smtp_url = bh_config_str("SMTP_URL", NULL);
    cfg->log_level = bh_config_str("BULKHEAD_LOG_LEVEL", "info");
    bh_log_set_level(bh_log_level_parse(cfg->log_level));

    int rc = 0;
    if (!cfg->database_url) {
        bh_log(BH_LOG_ERROR, "platform", "DATABASE_URL is not set");
        rc = BH_EINVAL;
    }
    cfg->jwt_secret = bh_config_str("BULKHEAD_JWT_SECRET", NULL);
    if (cfg->jwt_secret && strlen(cfg->jwt_secret) < 32) {
        bh_log(BH_LOG_ERROR, "platform", "BULKHEAD_JWT_SECRET must be at least 32 bytes");
        rc = BH_EINVAL;
    } else if (!cfg->jwt_secret && !cfg->dev) {
        bh_log(BH_LOG_ERROR, "platform", "BULKHEAD_JWT_SECRET is required when BULKHEAD_ENV=prod");
        rc = BH_EINVAL;
    } else if (!cfg->jwt_secret) {
        /* Dev mode: a fresh secret per process. Tokens do not survive a
         * restart and do not work across processes: set the variable to
         * run several processes. */
        unsigned char raw[32];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(generated_secret, sizeof generated_secret, raw, sizeof raw);
        cfg->jwt_secret = generated_secret;
        bh_log(BH_LOG_WARN, "platform",
               "BULKHEAD_JWT_SECRET is not set: generated a random one (dev mode only)");
    }
    current = *cfg;
    return rc;
}

const struct bh_config *bh_config(void)
{
    return &current;
}
