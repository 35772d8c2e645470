/* JSON-lines logs on stderr, one write(2) per line so lines from several
 * threads never interleave. Never logs secrets: callers pass no parameters
 * of SQL statements or tokens. */
#include "platform/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum bh_log_level min_level = BH_LOG_INFO;
static _Thread_local char ctx_request_id[130];
static _Thread_local char ctx_trace_id[40];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bh_log_set_level(enum bh_log_level min)
{
    min_level = min;
}

enum bh_log_level bh_log_level_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return (enum bh_log_level)i;
    return BH_LOG_INFO;
}

/* s (NULL: empty) into out, cut to fit: runs twice per request. */
static void copy_cut(char *out, size_t size, const char *s)
{
    size_t n = s ? strnlen(s, size - 1) : 0;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

void bh_log_context_set(const char *request_id, const char *trace_id)
{
    copy_cut(ctx_request_id, sizeof ctx_request_id, request_id);
    copy_cut(ctx_trace_id, sizeof ctx_trace_id, trace_id);
}

void bh_log_context_get(const char **request_id, const char **trace_id)
{
    *request_id = ctx_request_id;
    *trace_id = ctx_trace_id;
}

void bh_log(enum bh_log_level level, const char *module, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
                             "module", module ? module : "platform", "msg", msg);
    if (!line)
        return;
    if (ctx_request_id[0])
        json_object_set_new(line, "request_id", json_string(ctx_request_id));
    if (ctx_trace_id[0])
        json_object_set_new(line, "trace_id", json_string(ctx_trace_id));
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator; we write len + 1 bytes */
    ssize_t w = write(STDERR_FILENO, text, len + 1);
    (void)w;
    free(text);
}
