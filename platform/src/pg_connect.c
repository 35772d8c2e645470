/* Opening a Postgres connection (pg.h): one connect_timeout rule, one
 * non-blocking connect with a deadline, one way of logging server notices.
 * It must never block past its budget: libpq's own connect_timeout is only
 * honoured by its blocking calls, so the connect is polled here. */
#include "pg.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/breaker.h" /* bh_now_ms */
#include "platform/err.h"
#include "platform/log.h"

enum { CONNECT_TIMEOUT_MAX_S = 3600 }; /* a longer one in the URL is a typo */

int bh__pg_msg_len(const char *msg)
{
    size_t n = strcspn(msg, "\n");

    while (n > 0 && msg[n - 1] == ' ')
        n--;
    return (int)n;
}

int bh__pg_connect_budget_ms(const char *url, int *out_ms, char *why, size_t why_size)
{
    char *parse_error = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &parse_error);

    if (opts == NULL) {
        snprintf(why, why_size, "%.*s", parse_error ? bh__pg_msg_len(parse_error) : 0,
                 parse_error ? parse_error : "");
        PQfreemem(parse_error);
        return BH_EINVAL;
    }
    *out_ms = BH__PG_CONNECT_TIMEOUT_S * 1000;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL) {
            long s = strtol(o->val, NULL, 10);
            if (s > 0 && s <= CONNECT_TIMEOUT_MAX_S)
                *out_ms = (int)s * 1000;
        }
    }
    PQconninfoFree(opts);
    return 0;
}

/* Server messages (NOTICE, WARNING, and the FATAL a server sends before it
 * drops an idle connection) go to the log, never to stderr raw. */
static void log_notice(void *arg, const PGresult *r)
{
    const char *who = arg;
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    bool loud =
        severity != NULL && (strcmp(severity, "WARNING") == 0 || strcmp(severity, "FATAL") == 0 ||
                             strcmp(severity, "PANIC") == 0);

    bh_log(loud ? BH_LOG_WARN : BH_LOG_DEBUG, "platform", "db %s: postgres %s: %s", who,
           severity ? severity : "NOTICE", msg ? msg : "");
}

PGconn *bh__pg_connect(const char *url, const char *who, int64_t deadline_ms, char *why,
                       size_t why_size)
{
    char app_name[64], timeout_s[16];
    /* Processed in order: the URL's own connect_timeout wins over the
     * default, and nothing in it renames the application. */
    const char *const keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *const vals[] = {timeout_s, url, app_name, NULL};
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int budget_ms;
    int64_t until;
    PGconn *pg;

    if (bh__pg_connect_budget_ms(url, &budget_ms, why, why_size) != 0)
        return NULL;
    until = bh_now_ms() + budget_ms;
    if (deadline_ms < until)
        until = deadline_ms;
    snprintf(timeout_s, sizeof timeout_s, "%d", (budget_ms + 999) / 1000);
    snprintf(app_name, sizeof app_name, "bulkhead:%s", who);
    pg = PQconnectStartParams(keys, vals, 1);
    if (pg == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (PQstatus(pg) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd p = {.fd = PQsocket(pg),
                           .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int64_t left = until - bh_now_ms();
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, why_size, "%s", n == 0 ? "timed out" : strerror(errno));
            goto out_fail;
        }
        st = PQconnectPoll(pg);
    }
    if (st != PGRES_POLLING_OK) {
        snprintf(why, why_size, "%.*s", bh__pg_msg_len(PQerrorMessage(pg)), PQerrorMessage(pg));
        goto out_fail;
    }
    PQsetNoticeReceiver(pg, log_notice, (void *)who);
    return pg;

out_fail:
    PQfinish(pg);
    return NULL;
}
