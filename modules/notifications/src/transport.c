/* How an email leaves: over SMTP with libcurl when SMTP_URL is set (Mailpit
 * in docker compose), otherwise as an .eml file under BULKHEAD_DATA_DIR/mail
 * (the default, so a fresh checkout shows its mail without a mail server).
 * SMTP sits behind a circuit breaker: while the server is down, sends are
 * refused at once instead of each waiting for a timeout. Runs only on the
 * email workers, never on a request thread. */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "platform/breaker.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"

static struct {
    bool smtp;
    const char *url; /* borrowed from the environment (bh_config) */
    char mail_dir[PATH_MAX];
    long timeout_ms;
    struct bh_breaker breaker;
    bool curl_ready;
} g;

static void count(const char *outcome)
{
    char labels[96];
    snprintf(labels, sizeof labels, "transport=\"%s\",outcome=\"%s\"", g.smtp ? "smtp" : "file",
             outcome);
    bh_counter_add(bh_counter_get("bulkhead_notifications_emails_total",
                                  "Email send attempts by transport and outcome.", labels),
                   1);
}

static void breaker_gauge(struct bh_buf *out, void *arg)
{
    bh_metrics_printf(out, "bulkhead_notifications_smtp_breaker_open %d\n",
                      bh_breaker_state(&g.breaker) == BH_BREAKER_CLOSED ? 0 : 1);
}

long notifications__transport_timeout_ms(void)
{
    return g.timeout_ms;
}

int notifications__transport_init(void)
{
    const struct bh_config *cfg = bh_config();
    g.url = cfg->smtp_url;
    g.smtp = g.url && *g.url;
    g.timeout_ms = bh_config_int("NOTIFICATIONS_SMTP_TIMEOUT_MS", 10000, 100, 120000);
    bh_breaker_init(&g.breaker, "smtp",
                    (int)bh_config_int("NOTIFICATIONS_SMTP_BREAKER_THRESHOLD", 3, 1, 100),
                    bh_config_int("NOTIFICATIONS_SMTP_BREAKER_COOLDOWN_MS", 5000, 0, 600000));
    int n = snprintf(g.mail_dir, sizeof g.mail_dir, "%s/mail",
                     cfg->data_dir ? cfg->data_dir : ".run/data");
    if (n < 0 || (size_t)n >= sizeof g.mail_dir)
        return BH_EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return BH_EINTERNAL;
    g.curl_ready = true;
    bh_gauge_register("bulkhead_notifications_smtp_breaker_open",
                      "1 while the SMTP circuit breaker refuses sends.", breaker_gauge, NULL);
    return 0;
}

void notifications__transport_shutdown(void)
{
    if (g.curl_ready)
        curl_global_cleanup();
    g.curl_ready = false;
}

const char *notifications__transport_name(void)
{
    return g.smtp ? "smtp" : "file";
}

/* mkdir -p for the mail directory (the data dir may not exist yet). */
static int make_dirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static enum notifications__send_result send_file(const char *msg, size_t len, const char *name,
                                                 char *err, size_t err_size)
{
    char tmp[PATH_MAX + 64], final[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", g.mail_dir, name);
    snprintf(final, sizeof final, "%s/%s.eml", g.mail_dir, name);
    if (make_dirs(g.mail_dir) != 0) {
        snprintf(err, err_size, "cannot create %s: %s", g.mail_dir, strerror(errno));
        return NOTIF_SEND_TRANSIENT;
    }
    /* Written aside, then renamed: a reader never sees half a message. */
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
        return NOTIF_SEND_TRANSIENT;
    }
    bool ok = fwrite(msg, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, final) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", final, strerror(errno));
        unlink(tmp);
        return NOTIF_SEND_TRANSIENT;
    }
    return NOTIF_SENT;
}

struct upload {
    const char *p;
    size_t left;
};

static size_t upload_read(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nmemb < u->left ? size * nmemb : u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

static enum notifications__send_result send_smtp(const char *from_addr, const char *to_addr,
                                                 const char *msg, size_t len, char *err,
                                                 size_t err_size)
{
    char from[300], to[300], curl_err[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", from_addr);
    snprintf(to, sizeof to, "<%s>", to_addr);
    struct upload up = {msg, len};
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    CURL *c = curl_easy_init();
    if (!c || !rcpt) {
        curl_slist_free_all(rcpt);
        curl_easy_cleanup(c);
        snprintf(err, err_size, "out of memory");
        return NOTIF_SEND_TRANSIENT;
    }
    curl_easy_setopt(c, CURLOPT_URL, g.url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, g.timeout_ms < 3000 ? g.timeout_ms : 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g.timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode res = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    if (res == CURLE_OK)
        return NOTIF_SENT;
    snprintf(err, err_size, "smtp: %s%s%s (reply %ld)", curl_easy_strerror(res),
             curl_err[0] ? ": " : "", curl_err, code);
    /* A 5xx reply is the server's final answer for this message (a rejected
     * address, say): retrying cannot help, and the server is up. */
    return code >= 500 && code < 600 ? NOTIF_SEND_PERMANENT : NOTIF_SEND_TRANSIENT;
}

enum notifications__send_result notifications__transport_send(const char *from_addr,
                                                              const char *to_addr, const char *msg,
                                                              size_t len, const char *name,
                                                              char *err, size_t err_size)
{
    err[0] = '\0';
    if (!g.smtp) {
        enum notifications__send_result r = send_file(msg, len, name, err, err_size);
        count(r == NOTIF_SENT ? "sent" : "failed");
        return r;
    }
    if (!bh_breaker_allow(&g.breaker, bh_now_ms())) {
        snprintf(err, err_size, "smtp: circuit breaker open, not tried");
        count("refused");
        return NOTIF_SEND_REFUSED;
    }
    enum notifications__send_result r = send_smtp(from_addr, to_addr, msg, len, err, err_size);
    if (r == NOTIF_SEND_TRANSIENT)
        bh_breaker_failure(&g.breaker, bh_now_ms());
    else
        bh_breaker_success(&g.breaker);
    count(r == NOTIF_SENT ? "sent" : r == NOTIF_SEND_PERMANENT ? "rejected" : "failed");
    return r;
}
