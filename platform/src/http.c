/* The HTTP edge on libmicrohttpd: request lifecycle, body limits and content
 * negotiation, the router, problem replies, request ids and per-route
 * metrics. A handler never sees a malformed request: bad JSON, bodies that
 * are too large or too deep, wrong content types, unknown routes and
 * methods are answered here, as problem+json 4xx, before any module runs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "platform/breaker.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/problem.h"
#include "platform/server.h"
#include "platform/uuid.h"

enum { MAX_SEGMENTS = 16, MAX_PARAMS = 8, MAX_ROUTES = 256 };

struct route_entry {
    struct bh_mounted_route m;
    char *segments[MAX_SEGMENTS]; /* owned copies; "{name}" marks a parameter */
    int n_segments;
    struct bh_histogram *latency;
    _Atomic(struct bh_counter *) by_status[500]; /* index: status - 100 */
};

struct header {
    struct header *next;
    const char *name, *value; /* arena */
};

struct field_error {
    struct field_error *next;
    const char *field, *message; /* arena */
};

struct bh_req {
    struct MHD_Connection *conn;
    struct bh_arena *arena;
    const char *method, *path;
    struct route_entry *route;
    const char *param_names[MAX_PARAMS], *param_values[MAX_PARAMS];
    int n_params;
    char request_id[130];
    char trace_id[33];
    char client_addr[INET6_ADDRSTRLEN];
    /* body */
    char *body;
    size_t body_len, body_cap;
    json_t *json;
    /* validation */
    struct field_error *errors, *errors_tail;
    void *principal;
    /* reply */
    bool replied;
    unsigned status;
    struct header *headers;
    char *resp_body; /* malloc, handed to MHD */
    size_t resp_len;
    const char *resp_type;
    int64_t started_ms;
    bool counted;             /* in the in-flight count */
    bool queued;              /* the reply was handed to libmicrohttpd */
    bool offloaded;           /* handed to a handler pool; the connection is parked */
    int64_t enqueued_ms;      /* when it entered the pool's queue */
    struct bh_req *pool_next; /* in the pool's queue */
    size_t discarded;         /* body bytes read and dropped after a 413 */
    struct bh_stream *stream; /* a stream reply not yet handed to MHD */
};

/* A streaming reply (bh_reply_stream). MHD pulls bytes through
 * stream_reader() when the socket is writable; when the producer has none,
 * the connection is suspended (parked, no thread held) until
 * bh_stream_wake() resumes it. In internal polling mode a reader that just
 * returned 0 would be called again at once (a busy loop): suspending is what
 * makes waiting free. `lock` spans "read nothing, then suspend", so a wake
 * cannot slip in between and be lost. */
struct bh_stream {
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    bh_stream_read_fn read;
    bh_stream_done_fn done;
    void *arg;
    bool suspended;                /* parked by stream_reader(), waiting for a wake */
    bool closing;                  /* the server is stopping: end at the next read */
    struct bh_stream *prev, *next; /* in the live list (streams_lock) */
};

static struct route_entry routes[MAX_ROUTES];
static size_t n_routes;
static struct bh_mounted_route mounted[MAX_ROUTES];
static struct MHD_Daemon *daemon_handle;
static long body_limit = 65536;
static _Atomic int in_flight;
static int bound_port;
/* Live streams, so that shutdown can end them: MHD must not be stopped
 * while a connection is suspended. */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bh_stream *streams;
static bool streams_closing;
enum { STREAM_BLOCK_SIZE = 16 * 1024 };

/* ------------------------------------------------------------------ router */

static int split_path(char *path, char **segs, int max)
{
    int n = 0;
    for (char *save = NULL, *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        segs[n++] = s;
    }
    return n;
}

int bh_server_mount(const char *module, const struct bh_route *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (n_routes == MAX_ROUTES)
            return BH_EINVAL;
        for (size_t j = 0; j < n_routes; j++)
            if (strcmp(routes[j].m.route.pattern, rs[i].pattern) == 0 &&
                strcmp(routes[j].m.route.method, rs[i].method) == 0)
                return BH_ECONFLICT;
        struct route_entry *e = &routes[n_routes];
        char *copy = strdup(rs[i].pattern);
        if (!copy)
            return BH_ENOMEM;
        char *segs[MAX_SEGMENTS];
        int ns = split_path(copy, segs, MAX_SEGMENTS);
        if (ns < 0 || rs[i].pattern[0] != '/') {
            free(copy);
            return BH_EINVAL;
        }
        for (int k = 0; k < ns; k++)
            e->segments[k] = strdup(segs[k]);
        free(copy);
        e->n_segments = ns;
        e->m.module = module;
        e->m.route = rs[i];
        char labels[300];
        snprintf(labels, sizeof labels, "module=\"%s\",method=\"%s\",route=\"%s\"", module,
                 rs[i].method, rs[i].pattern);
        e->latency = bh_histogram_get("bulkhead_http_request_duration_seconds",
                                      "Time from request start to reply, by route.", labels);
        mounted[n_routes] = e->m;
        n_routes++;
    }
    return 0;
}

size_t bh_server_routes(const struct bh_mounted_route **out)
{
    *out = mounted;
    return n_routes;
}

static bool route_matches(const struct route_entry *e, char **segs, int ns, struct bh_req *req)
{
    if (e->n_segments != ns)
        return false;
    int np = 0;
    for (int i = 0; i < ns; i++) {
        const char *p = e->segments[i];
        if (p[0] == '{') {
            if (np < MAX_PARAMS && req) {
                req->param_names[np] = p;
                req->param_values[np] = segs[i];
                np++;
            }
        } else if (strcmp(p, segs[i]) != 0) {
            return false;
        }
    }
    if (req)
        req->n_params = np;
    return true;
}

/* Finds the route for method and path. On a path match with another method,
 * *allow receives the methods that exist (arena text) and NULL is returned. */
static struct route_entry *route_find(struct bh_req *req, const char **allow)
{
    *allow = NULL;
    char *copy = bh_arena_strdup(req->arena, req->path);
    if (!copy)
        return NULL;
    char *segs[MAX_SEGMENTS];
    int ns = split_path(copy, segs, MAX_SEGMENTS);
    if (ns < 0)
        return NULL;
    char methods[128] = "";
    for (size_t i = 0; i < n_routes; i++) {
        struct route_entry *e = &routes[i];
        if (!route_matches(e, segs, ns, NULL))
            continue;
        if (strcmp(e->m.route.method, req->method) == 0) {
            route_matches(e, segs, ns, req);
            return e;
        }
        if (!strstr(methods, e->m.route.method)) {
            size_t len = strlen(methods);
            snprintf(methods + len, sizeof methods - len, "%s%s", len ? ", " : "",
                     e->m.route.method);
        }
    }
    if (methods[0])
        *allow = bh_arena_strdup(req->arena, methods);
    return NULL;
}

/* ------------------------------------------------------------ request api */

const char *bh_req_method(const struct bh_req *req)
{
    return req->method;
}
const char *bh_req_path(const struct bh_req *req)
{
    return req->path;
}
const char *bh_req_route(const struct bh_req *req)
{
    return req->route ? req->route->m.route.pattern : "";
}
struct bh_arena *bh_req_arena(struct bh_req *req)
{
    return req->arena;
}
const char *bh_req_id(const struct bh_req *req)
{
    return req->request_id;
}
const char *bh_req_trace_id(const struct bh_req *req)
{
    return req->trace_id;
}
const char *bh_req_client_addr(const struct bh_req *req)
{
    return req->client_addr;
}
json_t *bh_req_json(const struct bh_req *req)
{
    return req->json;
}
void bh_req_set_principal(struct bh_req *req, void *principal)
{
    req->principal = principal;
}
void *bh_req_principal(const struct bh_req *req)
{
    return req->principal;
}
bool bh_req_replied(const struct bh_req *req)
{
    return req->replied;
}

const char *bh_req_param(const struct bh_req *req, const char *name)
{
    for (int i = 0; i < req->n_params; i++) {
        const char *p = req->param_names[i]; /* "{name}" */
        size_t n = strlen(name);
        if (strncmp(p + 1, name, n) == 0 && p[n + 1] == '}' && p[n + 2] == '\0')
            return req->param_values[i];
    }
    return NULL;
}

const char *bh_req_query(const struct bh_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

long bh_req_query_long(struct bh_req *req, const char *name, long dflt, long min, long max)
{
    const char *text = bh_req_query(req, name);
    if (!text)
        return dflt;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        bh_req_field_error(req, name, "must be an integer from %ld to %ld", min, max);
        return dflt;
    }
    return v;
}

const char *bh_req_header(const struct bh_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *bh_req_body(const struct bh_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

void bh_req_field_error(struct bh_req *req, const char *field, const char *fmt, ...)
{
    struct field_error *e = bh_arena_alloc(req->arena, sizeof *e);
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    e->message = bh_arena_vprintf(req->arena, fmt, ap);
    va_end(ap);
    e->field = bh_arena_strdup(req->arena, field);
    if (req->errors_tail)
        req->errors_tail->next = e;
    else
        req->errors = e;
    req->errors_tail = e;
}

bool bh_req_has_field_errors(const struct bh_req *req)
{
    return req->errors != NULL;
}

/* ----------------------------------------------------------------- replies */

void bh_reply_header(struct bh_req *req, const char *name, const char *value)
{
    struct header *h = bh_arena_alloc(req->arena, sizeof *h);
    if (!h)
        return;
    h->name = bh_arena_strdup(req->arena, name);
    h->value = bh_arena_strdup(req->arena, value);
    h->next = req->headers;
    req->headers = h;
}

static int set_reply(struct bh_req *req, unsigned status, const char *type, char *body, size_t len)
{
    if (req->replied) {
        bh_log(BH_LOG_ERROR, "platform", "second reply to %s %s ignored", req->method, req->path);
        free(body);
        return BH_EINTERNAL;
    }
    req->replied = true;
    req->status = status;
    req->resp_type = type;
    req->resp_body = body;
    req->resp_len = len;
    return 0;
}

int bh_reply_raw(struct bh_req *req, unsigned status, const char *content_type, const char *body,
                 size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return BH_ENOMEM;
    memcpy(copy, body, len);
    return set_reply(req, status, bh_arena_strdup(req->arena, content_type), copy, len);
}

int bh_reply_json(struct bh_req *req, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return BH_ENOMEM;
    return set_reply(req, status, "application/json", text, strlen(text));
}

int bh_reply_empty(struct bh_req *req, unsigned status)
{
    return set_reply(req, status, NULL, NULL, 0);
}

int bh_reply_problem(struct bh_req *req, unsigned status, const char *code, const char *detail,
                     json_t *extra)
{
    json_t *p = json_object();
    if (!p) {
        json_decref(extra);
        return BH_ENOMEM;
    }
    char type[200];
    snprintf(type, sizeof type, BH_PROBLEM_BASE "%s", code);
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(bh_status_title(status)));
    json_object_set_new(p, "status", json_integer(status));
    json_object_set_new(p, "detail", json_string(detail ? detail : bh_status_title(status)));
    json_object_set_new(p, "code", json_string(code));
    json_object_set_new(p, "request_id", json_string(req->request_id));
    if (req->errors) {
        json_t *errs = json_array();
        for (struct field_error *e = req->errors; e; e = e->next)
            json_array_append_new(errs, json_pack("{s:s, s:s}", "field", e->field ? e->field : "",
                                                  "message", e->message ? e->message : ""));
        json_object_set_new(p, "errors", errs);
    }
    if (extra) {
        json_object_update_missing(p, extra);
        json_decref(extra);
    }
    char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    if (!text)
        return BH_ENOMEM;
    return set_reply(req, status, "application/problem+json", text, strlen(text));
}

int bh_reply_field_errors(struct bh_req *req)
{
    return bh_reply_problem(req, 422, "validation_failed", "The request has invalid fields.", NULL);
}

int bh_reply_err(struct bh_req *req, int err, const char *detail)
{
    unsigned status = bh_err_status(err);
    if (status >= 500 && !detail)
        detail = status == 503 ? "A dependency is unavailable; try again shortly."
                               : "An unexpected error occurred.";
    if (status == 503)
        bh_reply_header(req, "Retry-After", "1");
    return bh_reply_problem(req, status, bh_err_name(err), detail, NULL);
}

/* ----------------------------------------------------------------- streams */

/* Unlinks s, lets its producer release arg, and frees it. */
static void stream_release(struct bh_stream *s)
{
    pthread_mutex_lock(&streams_lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&streams_lock);
    s->done(s->arg);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void stream_free_cb(void *cls)
{
    stream_release(cls);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct bh_stream *s = cls;
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&s->lock);
    if (!s->closing) {
        long got = s->read(s->arg, buf, max);
        if (got > 0) {
            n = (size_t)got <= max ? (ssize_t)got : (ssize_t)max;
        } else if (got == 0) {
            s->suspended = true;
            MHD_suspend_connection(s->conn);
            n = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

int bh_reply_stream(struct bh_req *req, unsigned status, const char *content_type,
                    bh_stream_read_fn read, bh_stream_done_fn done, void *arg,
                    struct bh_stream **out)
{
    if (!req->route || !(req->route->m.route.flags & BH_ROUTE_STREAM) || req->replied) {
        bh_log(BH_LOG_ERROR, "platform", "%s %s may not reply with a stream", req->method,
               req->path);
        done(arg);
        return BH_EINVAL;
    }
    struct bh_stream *s = calloc(1, sizeof *s);
    if (!s) {
        done(arg);
        return BH_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->conn = req->conn;
    s->read = read;
    s->done = done;
    s->arg = arg;
    pthread_mutex_lock(&streams_lock);
    s->closing = streams_closing;
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    pthread_mutex_unlock(&streams_lock);
    req->stream = s;
    req->replied = true;
    req->status = status;
    req->resp_type = bh_arena_strdup(req->arena, content_type);
    if (out)
        *out = s;
    return 0;
}

void bh_stream_wake(struct bh_stream *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Ends every stream at its next read and resumes the parked ones. */
static void streams_close_all(void)
{
    pthread_mutex_lock(&streams_lock);
    streams_closing = true;
    for (struct bh_stream *s = streams; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        if (s->suspended) {
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&streams_lock);
}

const char *bh_status_title(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* -------------------------------------------------------- request lifecycle */

static bool request_id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 128 || !(isalnum((unsigned char)s[n]) || strchr("._:-", s[n])))
            return false;
    return n > 0;
}

static bool hex_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

/* traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
static bool parse_traceparent(const char *tp, char out[33])
{
    if (!tp || strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return false;
    if (!hex_only(tp + 3, 32) || strspn(tp + 3, "0") >= 32)
        return false;
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
    return true;
}

static struct bh_req *req_new(struct MHD_Connection *conn, const char *url, const char *method)
{
    struct bh_arena *arena = bh_arena_new();
    if (!arena)
        return NULL;
    struct bh_req *req = bh_arena_alloc(arena, sizeof *req);
    if (!req) {
        bh_arena_free(arena);
        return NULL;
    }
    req->arena = arena;
    req->conn = conn;
    req->method = bh_arena_strdup(arena, method);
    req->path = bh_arena_strdup(arena, url);
    req->started_ms = bh_now_ms();
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_ok(rid)) {
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    } else {
        unsigned char raw[12];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(req->request_id, sizeof req->request_id, raw, sizeof raw);
    }
    if (!parse_traceparent(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent"),
                           req->trace_id)) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(req->trace_id, sizeof req->trace_id, raw, sizeof raw);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      req->client_addr, sizeof req->client_addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      req->client_addr, sizeof req->client_addr);
    }
    return req;
}

static void req_free(struct bh_req *req)
{
    if (req->stream) /* replied with a stream that never reached MHD */
        stream_release(req->stream);
    free(req->body);
    free(req->resp_body);
    json_decref(req->json);
    bh_arena_free(req->arena);
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/<anything>+json, such as application/merge-patch+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static enum MHD_Result queue_reply(struct bh_req *req)
{
    struct MHD_Response *resp;
    if (req->stream) {
        /* From here MHD owns the stream: stream_free_cb runs when the
         * response is destroyed (the connection ended). */
        struct bh_stream *s = req->stream;
        req->stream = NULL;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_SIZE, stream_reader,
                                                 s, stream_free_cb);
        if (!resp) {
            stream_release(s);
            return MHD_NO;
        }
    } else {
        resp =
            MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            return MHD_NO;
        req->resp_body = NULL; /* MHD owns it now */
    }
    if (req->resp_type)
        MHD_add_response_header(resp, "Content-Type", req->resp_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    for (struct header *h = req->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    enum MHD_Result r = MHD_queue_response(req->conn, req->status, resp);
    req->queued = r == MHD_YES;
    MHD_destroy_response(resp);
    return r;
}

static void record_metrics(struct bh_req *req)
{
    double seconds = (double)(bh_now_ms() - req->started_ms) / 1000.0;
    struct route_entry *e = req->route;
    unsigned status = req->status >= 100 && req->status < 600 ? req->status : 500;
    if (!e) {
        char labels[96];
        snprintf(labels, sizeof labels,
                 "module=\"platform\",method=\"%s\",route=\"unmatched\",status=\"%u\"",
                 strlen(req->method) < 16 ? req->method : "OTHER", status);
        bh_counter_add(bh_counter_get("bulkhead_http_requests_total",
                                      "HTTP requests by route, module and status.", labels),
                       1);
        return;
    }
    bh_histogram_observe(e->latency, seconds);
    struct bh_counter *c = atomic_load_explicit(&e->by_status[status - 100], memory_order_acquire);
    if (!c) {
        char labels[320];
        snprintf(labels, sizeof labels, "module=\"%s\",method=\"%s\",route=\"%s\",status=\"%u\"",
                 e->m.module, e->m.route.method, e->m.route.pattern, status);
        c = bh_counter_get("bulkhead_http_requests_total",
                           "HTTP requests by route, module and status.", labels);
        atomic_store_explicit(&e->by_status[status - 100], c, memory_order_release);
    }
    bh_counter_add(c, 1);
}

/* Matches the route and parses the body. Returns true when the handler
 * should run; false when a problem reply was made instead. */
static bool prepare(struct bh_req *req)
{
    const char *allow = NULL;
    req->route = route_find(req, &allow);
    if (!req->route) {
        if (allow) {
            bh_reply_header(req, "Allow", allow);
            bh_reply_problem(req, 405, "method_not_allowed",
                             bh_arena_printf(req->arena, "%s is not allowed here; allowed: %s.",
                                             req->method, allow),
                             NULL);
        } else {
            bh_reply_problem(req, 404, "not_found", "No such route.", NULL);
        }
        return false;
    }
    if (req->body_len > 0 && !(req->route->m.route.flags & BH_ROUTE_NO_BODY_CHECK)) {
        if (bh_json_too_deep(req->body, req->body_len, BH_JSON_MAX_DEPTH)) {
            bh_reply_problem(req, 400, "json_too_deep",
                             "The JSON body nests deeper than the allowed depth.", NULL);
            return false;
        }
        json_error_t jerr;
        req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req->json) {
            bh_reply_problem(
                req, 400, "malformed_json",
                bh_arena_printf(req->arena, "The body is not valid JSON: %s.", jerr.text), NULL);
            return false;
        }
        if (!json_is_object(req->json)) {
            bh_reply_problem(req, 400, "malformed_json", "The body must be a JSON object.", NULL);
            return false;
        }
    }
    return true;
}

/* Runs the route's handler and makes sure exactly one reply exists. */
static void run_handler(struct bh_req *req)
{
    int rc = req->route->m.route.handler(req);
    if (!req->replied) {
        if (rc == 0) {
            bh_log(BH_LOG_ERROR, "platform", "handler for %s %s returned without a reply",
                   req->method, req->route->m.route.pattern);
            rc = BH_EINTERNAL;
        }
        if (rc == BH_EINVAL && req->errors)
            bh_reply_field_errors(req);
        else
            bh_reply_err(req, rc, NULL);
    }
}

/* Logs and counts a request whose reply is ready. */
static void finish(struct bh_req *req)
{
    if (req->status >= 500)
        bh_log(BH_LOG_ERROR, "platform", "%s %s -> %u", req->method, req->path, req->status);
    else
        bh_log(BH_LOG_DEBUG, "platform", "%s %s -> %u", req->method, req->path, req->status);
    record_metrics(req);
}

/* ----------------------------------------------------------- handler pools */

/* The platform's side of a struct bh_handler_pool: a FIFO of parked
 * requests and the threads that run their handlers. A request is parked
 * (MHD_suspend_connection) before it is queued, so the worker's resume can
 * never come first; libmicrohttpd calls on_request() again after the
 * resume, and that call sends the reply the worker prepared. */
struct bh__pool_state {
    struct bh_handler_pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct bh_req *head, *tail;
    int queued;
    bool stopping;
    pthread_t *threads;
    int n_threads;
    struct bh_counter *rejected;
    struct bh_histogram *waited;
    struct bh__pool_state *next; /* all started pools */
};

static struct bh__pool_state *pools;

static void reply_busy(struct bh_req *req, const char *pool)
{
    bh_reply_header(req, "Retry-After", "1");
    bh_reply_problem(
        req, 503, "busy",
        bh_arena_printf(req->arena, "Too many %s requests at once; try again shortly.", pool),
        NULL);
}

static void *pool_main(void *arg)
{
    struct bh__pool_state *ps = arg;
    for (;;) {
        pthread_mutex_lock(&ps->lock);
        while (!ps->head && !ps->stopping)
            pthread_cond_wait(&ps->work, &ps->lock);
        struct bh_req *req = ps->head;
        if (!req) { /* stopping, and nothing left */
            pthread_mutex_unlock(&ps->lock);
            return NULL;
        }
        ps->head = req->pool_next;
        if (!ps->head)
            ps->tail = NULL;
        ps->queued--;
        bool stopping = ps->stopping;
        pthread_mutex_unlock(&ps->lock);

        int64_t waited = bh_now_ms() - req->enqueued_ms;
        bh_histogram_observe(ps->waited, (double)waited / 1000.0);
        bh_log_context_set(req->request_id, req->trace_id);
        if (stopping || waited > ps->pool->max_wait_ms) {
            bh_counter_add(ps->rejected, 1);
            reply_busy(req, ps->pool->name);
        } else {
            run_handler(req);
        }
        finish(req);
        bh_log_context_set(NULL, NULL);
        MHD_resume_connection(req->conn);
    }
}

/* Starts the threads of every pool the mounted routes name. */
static int pools_start(void)
{
    for (size_t i = 0; i < n_routes; i++) {
        struct bh_handler_pool *pool = routes[i].m.route.pool;
        if (!pool || pool->state)
            continue;
        struct bh__pool_state *ps = calloc(1, sizeof *ps);
        int n = pool->threads > 0 ? pool->threads : 1;
        if (!ps || !(ps->threads = calloc((size_t)n, sizeof *ps->threads))) {
            free(ps);
            return BH_ENOMEM;
        }
        ps->pool = pool;
        pthread_mutex_init(&ps->lock, NULL);
        pthread_cond_init(&ps->work, NULL);
        char labels[96];
        snprintf(labels, sizeof labels, "pool=\"%s\"", pool->name);
        ps->rejected =
            bh_counter_get("bulkhead_handler_pool_rejected_total",
                           "Requests answered 503 because their handler pool was full.", labels);
        ps->waited = bh_histogram_get("bulkhead_handler_pool_wait_seconds",
                                      "Time requests waited for a handler pool thread.", labels);
        pool->state = ps;
        ps->next = pools;
        pools = ps;
        for (; ps->n_threads < n; ps->n_threads++)
            if (pthread_create(&ps->threads[ps->n_threads], NULL, pool_main, ps) != 0)
                return BH_ENOMEM;
    }
    return 0;
}

/* Lets the pools finish what they hold (what still waits is answered 503),
 * joins their threads and frees them. */
static void pools_stop(void)
{
    while (pools) {
        struct bh__pool_state *ps = pools;
        pools = ps->next;
        pthread_mutex_lock(&ps->lock);
        ps->stopping = true;
        pthread_cond_broadcast(&ps->work);
        pthread_mutex_unlock(&ps->lock);
        for (int i = 0; i < ps->n_threads; i++)
            pthread_join(ps->threads[i], NULL);
        ps->pool->state = NULL;
        pthread_cond_destroy(&ps->work);
        pthread_mutex_destroy(&ps->lock);
        free(ps->threads);
        free(ps);
    }
}

/* Parks the request and queues it on its route's pool. False (with a 503
 * reply made) when the queue is full. */
static bool offload(struct bh_req *req)
{
    struct bh__pool_state *ps = req->route->m.route.pool->state;
    pthread_mutex_lock(&ps->lock);
    if (ps->queued >= ps->pool->queue_max || ps->stopping) {
        pthread_mutex_unlock(&ps->lock);
        bh_counter_add(ps->rejected, 1);
        reply_busy(req, ps->pool->name);
        return false;
    }
    req->offloaded = true;
    req->enqueued_ms = bh_now_ms();
    MHD_suspend_connection(req->conn);
    if (ps->tail)
        ps->tail->pool_next = req;
    else
        ps->head = req;
    ps->tail = req;
    ps->queued++;
    pthread_cond_signal(&ps->work);
    pthread_mutex_unlock(&ps->lock);
    return true;
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
           strcmp(m, "DELETE") == 0;
}

/* The body checks that can be decided from the headers alone. */
static void check_headers(struct bh_req *req)
{
    const char *cl = bh_req_header(req, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > body_limit) {
        bh_reply_problem(req, 413, "body_too_large",
                         bh_arena_printf(req->arena, "The body exceeds %ld bytes.", body_limit),
                         NULL);
        return;
    }
    bool announces_body =
        (cl && strtoll(cl, NULL, 10) > 0) || bh_req_header(req, "Transfer-Encoding") != NULL;
    if (method_has_body(req->method) && announces_body) {
        const char *allow = NULL;
        struct route_entry *e = route_find(req, &allow);
        bool raw = e && (e->m.route.flags & BH_ROUTE_NO_BODY_CHECK);
        if (!raw && !is_json_type(bh_req_header(req, "Content-Type")))
            bh_reply_problem(req, 415, "unsupported_media_type",
                             "Send the body as application/json.", NULL);
        req->n_params = 0; /* route_find above is only a probe */
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct bh_req *req = *con_cls;
    if (!req) {
        req = req_new(conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        atomic_fetch_add(&in_flight, 1);
        req->counted = true;
        check_headers(req);
        if (req->replied) { /* answer now: no need to read a body we refuse */
            record_metrics(req);
            return queue_reply(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->replied) {
            size_t n = *upload_data_size;
            if (req->body_len + n > (size_t)body_limit) {
                /* A chunked body only shows its size while it arrives, and
                 * libmicrohttpd takes a reply only once the upload is read:
                 * answer 413 at the end, dropping what still comes. */
                bh_reply_problem(
                    req, 413, "body_too_large",
                    bh_arena_printf(req->arena, "The body exceeds %ld bytes.", body_limit), NULL);
                *upload_data_size = 0;
                return MHD_YES;
            }
            if (req->body_len + n + 1 > req->body_cap) {
                size_t cap = req->body_cap ? req->body_cap : 1024;
                while (cap < req->body_len + n + 1)
                    cap *= 2;
                char *b = realloc(req->body, cap);
                if (!b)
                    return MHD_NO;
                req->body = b;
                req->body_cap = cap;
            }
            memcpy(req->body + req->body_len, upload_data, n);
            req->body_len += n;
            req->body[req->body_len] = '\0';
        } else {
            req->discarded += *upload_data_size;
            if (req->discarded > 8 * (size_t)body_limit)
                return MHD_NO; /* a flood, not a mistake: drop the connection */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->queued) /* refused from the headers and already answered */
        return MHD_YES;
    if (req->offloaded) /* resumed by its handler pool, with the reply made */
        return queue_reply(req);
    if (!req->replied) {
        bh_log_context_set(req->request_id, req->trace_id);
        bool run = prepare(req);
        if (run && req->route->m.route.pool && req->route->m.route.pool->state) {
            if (offload(req)) {
                bh_log_context_set(NULL, NULL);
                return MHD_YES; /* parked: the pool answers */
            }
        } else if (run) {
            run_handler(req);
        }
        finish(req);
        bh_log_context_set(NULL, NULL);
    } else {
        record_metrics(req);
    }
    return queue_reply(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct bh_req *req = *con_cls;
    if (!req)
        return;
    if (req->counted)
        atomic_fetch_sub(&in_flight, 1);
    req_free(req);
    *con_cls = NULL;
}

int bh_server_start(const struct bh_config *cfg)
{
    body_limit = cfg->http_body_limit;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->http_port)};
    if (inet_pton(AF_INET, cfg->http_addr, &addr.sin_addr) != 1) {
        bh_log(BH_LOG_ERROR, "platform", "BULKHEAD_HTTP_ADDR %s is not an IPv4 address",
               cfg->http_addr);
        return BH_EINVAL;
    }
    int prc = pools_start();
    if (prc != 0) {
        pools_stop();
        return prc;
    }
    daemon_handle = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
            MHD_ALLOW_SUSPEND_RESUME, /* parked stream replies (bh_reply_stream) */
        (uint16_t)cfg->http_port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->http_max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->http_timeout_s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (!daemon_handle) {
        pools_stop();
        bh_log(BH_LOG_ERROR, "platform", "cannot listen on %s:%d", cfg->http_addr, cfg->http_port);
        return BH_EUNAVAILABLE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    bound_port = di ? di->port : cfg->http_port;
    bh_log(BH_LOG_INFO, "platform", "listening on http://%s:%d (%d threads)", cfg->http_addr,
           bound_port, cfg->http_threads);
    return 0;
}

int bh_server_port(void)
{
    return bound_port;
}
int bh_server_in_flight(void)
{
    return atomic_load(&in_flight);
}

void bh_server_stop(int grace_ms)
{
    if (!daemon_handle)
        return;
    MHD_socket s = MHD_quiesce_daemon(daemon_handle); /* stop accepting */
    streams_close_all(); /* open streams would otherwise hold the drain */
    int64_t deadline = bh_now_ms() + grace_ms;
    while (atomic_load(&in_flight) > 0 && bh_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&in_flight);
    if (left > 0)
        bh_log(BH_LOG_WARN, "platform", "grace period over with %d requests in flight", left);
    /* No connection may stay parked when the daemon stops: the pools answer
     * what they still hold and resume it. */
    pools_stop();
    MHD_stop_daemon(daemon_handle);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    daemon_handle = NULL;
}
