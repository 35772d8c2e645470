/* Configuration from the environment, read once at start-up. */
#ifndef BH_PLATFORM_CONFIG_H
#define BH_PLATFORM_CONFIG_H

#include <stdbool.h>

struct bh_config {
    bool dev;                    /* BULKHEAD_ENV=dev (default) vs prod */
    const char *http_addr;       /* BULKHEAD_HTTP_ADDR, default 127.0.0.1 */
    int http_port;               /* BULKHEAD_HTTP_PORT, default 8080 */
    int http_threads;            /* BULKHEAD_HTTP_THREADS, default 8 */
    int http_max_connections;    /* BULKHEAD_HTTP_MAX_CONNECTIONS, default 1024 */
    int http_timeout_s;          /* BULKHEAD_HTTP_TIMEOUT_S (idle connection), default 30 */
    long http_body_limit;        /* BULKHEAD_HTTP_BODY_LIMIT bytes, default 65536 */
    const char *database_url;    /* DATABASE_URL (required) */
    int db_pool_size;            /* BULKHEAD_DB_POOL_SIZE per module, default 8 */
    int db_pool_wait_ms;         /* BULKHEAD_DB_POOL_WAIT_MS, default 2000 */
    int db_statement_timeout_ms; /* BULKHEAD_DB_STATEMENT_TIMEOUT_MS, default 5000 */
    const char *redis_url;       /* REDIS_URL, default redis://127.0.0.1:6379 */
    const char
        *redis_password;    /* BULKHEAD_REDIS_PASSWORD (one per deployment, one user per module) */
    int redis_timeout_ms;   /* BULKHEAD_REDIS_TIMEOUT_MS, default 500 */
    const char *jwt_secret; /* BULKHEAD_JWT_SECRET[_FILE] (>= 32 bytes; generated in dev) */
    const char *ops_token;  /* BULKHEAD_OPS_TOKEN[_FILE]: bearer for the operational routes
                               (>= 16 bytes; generated in dev) */
    const char *migrations_dir; /* BULKHEAD_MIGRATIONS_DIR, default ./migrations */
    const char *data_dir;       /* BULKHEAD_DATA_DIR, default ./.run/data */
    const char *smtp_url;       /* SMTP_URL; unset: mail is written as .eml files */
    const char *log_level;      /* BULKHEAD_LOG_LEVEL, default info */
};

/* Fill cfg from the environment. Returns 0, or BH_EINVAL after logging what
 * is wrong (for example a missing secret in production). The strings point
 * into the environment or static storage: never free them. */
int bh_config_load(struct bh_config *cfg);

/* The configuration loaded at start-up (read-only after bh_config_load). */
const struct bh_config *bh_config(void);

/* Integer from the environment with a default and bounds (for module knobs). */
long bh_config_int(const char *name, long dflt, long min, long max);
/* String from the environment, or dflt when unset or empty. */
const char *bh_config_str(const char *name, const char *dflt);
/* A secret: the value of name, or the first line of the file name_FILE
 * names (setting both is an error). Unset in dev: a random value for this
 * process (logged as such, never its value); unset in prod: an error. 0 with
 * *out (static storage: never free it), or BH_EINVAL after logging why.
 * Call after bh_config_load(), or from it. */
int bh_config_secret(const char *name, const char **out);

#endif
