/* Configuration from the environment. Read once at start-up, then read-only.
 * Secrets come from NAME or from the file NAME_FILE names; none has a
 * default anyone could know: production refuses to start without them and
 * dev generates random ones per process. Never prints a secret's value. */
#include "platform/config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/log.h"

static struct bh_config current;

enum { SECRET_MAX = 4096, SECRETS = 8 };
/* Secrets read from files or generated: kept for the life of the process. */
static struct {
    char name[64];
    char value[SECRET_MAX];
} secrets[SECRETS];
static int n_secrets;

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

static char *secret_slot(const char *name)
{
    for (int i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i].name, name) == 0)
            return secrets[i].value;
    if (n_secrets == SECRETS)
        return NULL;
    snprintf(secrets[n_secrets].name, sizeof secrets[n_secrets].name, "%s", name);
    return secrets[n_secrets++].value;
}

/* The first line of path into out (a trailing newline is not part of it). */
static int read_secret_file(const char *name, const char *path, char *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        bh_log(BH_LOG_ERROR, "platform", "%s_FILE: cannot read %s: %s", name, path,
               strerror(errno));
        return BH_EINVAL;
    }
    size_t n = fread(out, 1, SECRET_MAX - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (more || !out[0]) {
        sodium_memzero(out, SECRET_MAX);
        bh_log(BH_LOG_ERROR, "platform", "%s_FILE: %s is %s", name, path,
               more ? "too long" : "empty");
        return BH_EINVAL;
    }
    return 0;
}

int bh_config_secret(const char *name, const char **out)
{
    char file_var[96];
    snprintf(file_var, sizeof file_var, "%s_FILE", name);
    const char *value = bh_config_str(name, NULL), *path = bh_config_str(file_var, NULL);
    *out = NULL;
    if (value && path) {
        bh_log(BH_LOG_ERROR, "platform", "both %s and %s are set: set one", name, file_var);
        return BH_EINVAL;
    }
    if (value) {
        *out = value;
        return 0;
    }
    char *slot = secret_slot(name);
    if (!slot)
        return BH_ENOMEM;
    if (path) {
        int rc = read_secret_file(name, path, slot);
        *out = rc == 0 ? slot : NULL;
        return rc;
    }
    if (!current.dev) {
        bh_log(BH_LOG_ERROR, "platform", "%s (or %s) is required when BULKHEAD_ENV=prod", name,
               file_var);
        return BH_EINVAL;
    }
    /* Dev: a random value for this process only. Several processes (an API
     * and a worker) or a restart do not share it: set it to share it. */
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(slot, SECRET_MAX, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    bh_log(BH_LOG_WARN, "platform",
           "%s is not set: generated a random one for this process (dev mode only; "
           "scripts/devenv writes per-install secrets under its run directory)",
           name);
    *out = slot;
    return 0;
}

/* Dev mode listening beyond loopback: said loudly, at every start. */
static void warn_exposed_dev(const struct bh_config *cfg)
{
    if (!cfg->dev || strncmp(cfg->http_addr, "127.", 4) == 0 ||
        strcmp(cfg->http_addr, "localhost") == 0 || strcmp(cfg->http_addr, "::1") == 0)
        return;
    bh_log(BH_LOG_WARN, "platform",
           "DEV MODE ON A NON-LOOPBACK ADDRESS (%s): anyone who can reach this port reaches a "
           "development server (dev-only routes, generated secrets). Set BULKHEAD_ENV=prod "
           "with real secrets, or BULKHEAD_HTTP_ADDR=127.0.0.1",
           cfg->http_addr);
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
    current.dev = cfg->dev; /* bh_config_secret() reads it */
    if (bh_config_secret("BULKHEAD_JWT_SECRET", &cfg->jwt_secret) != 0) {
        rc = BH_EINVAL;
    } else if (strlen(cfg->jwt_secret) < 32) {
        bh_log(BH_LOG_ERROR, "platform", "BULKHEAD_JWT_SECRET must be at least 32 bytes");
        rc = BH_EINVAL;
    }
    if (bh_config_secret("BULKHEAD_OPS_TOKEN", &cfg->ops_token) != 0) {
        rc = BH_EINVAL;
    } else if (strlen(cfg->ops_token) < 16) {
        bh_log(BH_LOG_ERROR, "platform", "BULKHEAD_OPS_TOKEN must be at least 16 bytes");
        rc = BH_EINVAL;
    }
    warn_exposed_dev(cfg);
    current = *cfg;
    return rc;
}

const struct bh_config *bh_config(void)
{
    return &current;
}
