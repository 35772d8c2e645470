/* JSON-lines logging to stderr: {"ts","level","module","request_id","msg"}.
 * The request id (and trace id) of the request or job being handled on this
 * thread is added automatically; set it with bh_log_context_set(). */
#ifndef BH_PLATFORM_LOG_H
#define BH_PLATFORM_LOG_H

enum bh_log_level { BH_LOG_DEBUG, BH_LOG_INFO, BH_LOG_WARN, BH_LOG_ERROR };

void bh_log_set_level(enum bh_log_level min);
/* Parse "debug|info|warn|error"; returns BH_LOG_INFO for anything else. */
enum bh_log_level bh_log_level_parse(const char *s);

/* The ids of the work this thread is doing now (copied; NULL clears). */
void bh_log_context_set(const char *request_id, const char *trace_id);
/* The ids set on this thread ("" when none). The strings are the thread's
 * own and stay valid until its next bh_log_context_set(). */
void bh_log_context_get(const char **request_id, const char **trace_id);

void bh_log(enum bh_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef BH_MODULE_NAME
/* Inside a module the module name is filled in. */
#define bh_log_debug(...) bh_log(BH_LOG_DEBUG, BH_MODULE_NAME, __VA_ARGS__)
#define bh_log_info(...)  bh_log(BH_LOG_INFO, BH_MODULE_NAME, __VA_ARGS__)
#define bh_log_warn(...)  bh_log(BH_LOG_WARN, BH_MODULE_NAME, __VA_ARGS__)
#define bh_log_error(...) bh_log(BH_LOG_ERROR, BH_MODULE_NAME, __VA_ARGS__)
#endif

#endif
