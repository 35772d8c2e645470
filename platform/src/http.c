/* The HTTP edge on libmicrohttpd: the request lifecycle, body limits and
 * content negotiation, request ids and per-route metrics, and the server's
 * start and drain (the router, replies, streams and handler pools have
 * files of their own). A handler never sees a malformed request: bad JSON, bodies that
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

#include "http_internal.h"
#include "platform/breaker.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/server.h"
#include "platform/uuid.h"

/* Refused body bytes read and dropped, beyond which the connection is cut. */
enum { DRAIN_MAX = 64 << 20 };

static struct MHD_Daemon *daemon_handle;
static long body_limit = 65536;
/* Requests between their headers and their completion. */
static _Atomic int in_flight;
/* Connections accepted that have not begun a request yet. A client's first
 * request may still be on its way when SIGTERM lands: the drain waits for
 * such connections too, for at most FRESH_SETTLE_MS, so a connection the
 * server accepted is answered, not reset. (One still in the kernel's
 * backlog is not the server's yet: the proxy's drain marker covers that.) */
static _Atomic int fresh;
enum { FRESH_SETTLE_MS = 500 };

/* Per connection, owned by MHD's socket context: allocated when the
 * connection starts, freed when it closes, touched only by its thread. */
struct conn_state {
    bool served; /* a request has begun on it */
};

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

/* The request path as the router reads it, written canonically: no empty
 * segments ("//v1//orgs/" is "/v1/orgs"), and every byte outside RFC 3986's
 * pchar percent-encoded (libmicrohttpd has decoded the URL), so a path put
 * into a header or a link is always an absolute path of this origin. */
static char *canonical_path(struct bh_arena *a, const char *url)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(url);
    char *out = bh_arena_alloc(a, 3 * n + 2);
    if (!out)
        return NULL;
    size_t w = 0;
    for (const char *p = url; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        out[w++] = '/';
        for (; *p && *p != '/'; p++) {
            unsigned char c = (unsigned char)*p;
            if (isalnum(c) || strchr("-._~!$&'()*+,;=:@", c)) {
                out[w++] = (char)c;
            } else {
                out[w++] = '%';
                out[w++] = hex[c >> 4];
                out[w++] = hex[c & 15];
            }
        }
    }
    if (w == 0)
        out[w++] = '/';
    out[w] = '\0';
    return out;
}

/* The dotted-quad text inet_ntop() writes, without its printf. */
static void ipv4_text(const struct in_addr *in, char out[INET_ADDRSTRLEN])
{
    const unsigned char *b = (const unsigned char *)&in->s_addr;
    char *w = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *w++ = (char)('0' + v / 100);
        if (v >= 10)
            *w++ = (char)('0' + v / 10 % 10);
        *w++ = (char)('0' + v % 10);
        if (i < 3)
            *w++ = '.';
    }
    *w = '\0';
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
    req->path = canonical_path(arena, url);
    req->started_ms = bh_now_ms();
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_ok(rid)) {
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    } else {
        unsigned char raw[12];
        bh_random_bytes(raw, sizeof raw);
        sodium_bin2hex(req->request_id, sizeof req->request_id, raw, sizeof raw);
    }
    if (!parse_traceparent(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent"),
                           req->trace_id)) {
        unsigned char raw[16];
        bh_random_bytes(raw, sizeof raw);
        sodium_bin2hex(req->trace_id, sizeof req->trace_id, raw, sizeof raw);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            ipv4_text(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->client_addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      req->client_addr, sizeof req->client_addr);
    }
    return req;
}

static void req_free(struct bh_req *req)
{
    if (req->stream) /* replied with a stream that never reached MHD */
        bh__stream_release(req->stream);
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
        resp = bh__stream_response(s);
        if (!resp)
            return MHD_NO;
    } else {
        /* Bytes that live as long as the request go out without a copy:
         * libmicrohttpd has sent them before on_completed frees the arena. */
        if (req->resp_body)
            resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
                                                   MHD_RESPMEM_MUST_FREE);
        else
            resp = MHD_create_response_from_buffer(
                req->resp_len, (void *)(uintptr_t)req->resp_bytes, MHD_RESPMEM_PERSISTENT);
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

/* The method as a metric label: the client chooses it, so anything but a
 * standard method is "OTHER" (a label set that stays small and valid). */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "OTHER";
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
                 method_label(req->method), status);
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
    if (!req->route) {
        if (req->allow) {
            bh_reply_header(req, "Allow", req->allow);
            bh_reply_problem(req, 405, "method_not_allowed",
                             bh_arena_printf(req->arena, "%s is not allowed here; allowed: %s.",
                                             req->method, req->allow),
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
void bh__run_handler(struct bh_req *req)
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
void bh__finish(struct bh_req *req)
{
    if (req->status >= 500)
        bh_log(BH_LOG_ERROR, "platform", "%s %s -> %u", req->method, req->path, req->status);
    else
        bh_log(BH_LOG_DEBUG, "platform", "%s %s -> %u", req->method, req->path, req->status);
    record_metrics(req);
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
           strcmp(m, "DELETE") == 0;
}

/* An operational route's bearer token is the ops token. Compared as
 * digests, so the time taken says nothing about either. */
static bool ops_authorized(struct bh_req *req)
{
    const char *h = bh_req_header(req, "Authorization");
    const char *want = bh_config()->ops_token;
    if (!h || !want || !*want || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
    crypto_generichash(a, sizeof a, (const unsigned char *)h + 7, strlen(h + 7), NULL, 0);
    crypto_generichash(b, sizeof b, (const unsigned char *)want, strlen(want), NULL, 0);
    return sodium_memcmp(a, b, sizeof a) == 0;
}

/* Matches the route (once, for the whole request) and makes the body
 * checks that can be decided from the headers alone. */
static void check_headers(struct bh_req *req)
{
    req->route = bh__route_find(req, &req->allow);
    if (req->route && (req->route->m.route.flags & BH_ROUTE_OPS) && !ops_authorized(req)) {
        bh_reply_header(req, "WWW-Authenticate", "Bearer realm=\"bulkhead-ops\"");
        bh_reply_problem(req, 401, "ops_token_required",
                         "Operational routes need Authorization: Bearer <BULKHEAD_OPS_TOKEN>.",
                         NULL);
        return;
    }
    const char *cl = bh_req_header(req, "Content-Length");
    long long length = cl ? strtoll(cl, NULL, 10) : 0;
    if (length > body_limit) {
        bh_reply_problem(req, 413, "body_too_large",
                         bh_arena_printf(req->arena, "The body exceeds %ld bytes.", body_limit),
                         NULL);
        return;
    }
    bool announces_body = length > 0 || bh_req_header(req, "Transfer-Encoding") != NULL;
    /* No route: the 404 or 405 comes once the body is read. */
    if (req->route && method_has_body(req->method) && announces_body &&
        !(req->route->m.route.flags & BH_ROUTE_NO_BODY_CHECK) &&
        !is_json_type(bh_req_header(req, "Content-Type")))
        bh_reply_problem(req, 415, "unsupported_media_type", "Send the body as application/json.",
                         NULL);
}

/* Takes one piece of the body as it arrives: kept while it fits the limit,
 * counted and dropped once the request is answered. */
static enum MHD_Result take_upload(struct bh_req *req, const char *upload_data,
                                   size_t *upload_data_size)
{
    if (!req->replied) {
        size_t n = *upload_data_size;
        if (req->body_len + n > (size_t)body_limit) {
            /* A chunked body only shows its size while it arrives, and
             * libmicrohttpd takes a reply only once the upload is read:
             * answer 413 at the end, dropping what still comes. */
            bh_reply_problem(req, 413, "body_too_large",
                             bh_arena_printf(req->arena, "The body exceeds %ld bytes.", body_limit),
                             NULL);
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
        /* libmicrohttpd takes no reply before the upload is read: read
         * and drop what comes, so the client gets its 413, up to a bound
         * beyond which it is a flood, not a mistake. */
        req->discarded += *upload_data_size;
        if (req->discarded > DRAIN_MAX)
            return MHD_NO;
    }
    *upload_data_size = 0;
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *cs = calloc(1, sizeof *cs);
        if (cs) /* without it the connection is simply not waited for */
            atomic_fetch_add(&fresh, 1);
        *socket_context = cs;
        return;
    }
    struct conn_state *cs = *socket_context;
    if (cs && !cs->served)
        atomic_fetch_sub(&fresh, 1);
    free(cs);
    *socket_context = NULL;
}

/* The connection's first request has begun: it is no longer fresh. */
static void conn_served(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *cs = ci ? ci->socket_context : NULL;
    if (cs && !cs->served) {
        cs->served = true;
        atomic_fetch_sub(&fresh, 1);
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
        conn_served(conn);
        check_headers(req);
        if (req->replied) { /* answer now: no need to read a body we refuse */
            record_metrics(req);
            return queue_reply(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size)
        return take_upload(req, upload_data, upload_data_size);
    if (req->queued) /* refused from the headers and already answered */
        return MHD_YES;
    if (req->offloaded) /* resumed by its handler pool, with the reply made */
        return queue_reply(req);
    if (!req->replied) {
        bh_log_context_set(req->request_id, req->trace_id);
        bool run = prepare(req);
        if (run && req->route->m.route.pool && req->route->m.route.pool->state) {
            if (bh__offload(req)) {
                bh_log_context_set(NULL, NULL);
                return MHD_YES; /* parked: the pool answers */
            }
        } else if (run && bh__admit(req)) {
            bh__run_handler(req);
        }
        bh__finish(req);
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
    int prc = bh__pools_start(bh__run_handler, bh__finish);
    if (prc != 0) {
        bh__pools_free();
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
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
    if (!daemon_handle) {
        bh__pools_free();
        bh_log(BH_LOG_ERROR, "platform", "cannot listen on %s:%d", cfg->http_addr, cfg->http_port);
        return BH_EUNAVAILABLE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    bh_log(BH_LOG_INFO, "platform", "listening on http://%s:%d (%d threads)", cfg->http_addr,
           di ? di->port : cfg->http_port, cfg->http_threads);
    return 0;
}

void bh_server_stop(int grace_ms)
{
    if (!daemon_handle)
        return;
    MHD_socket s = MHD_quiesce_daemon(daemon_handle); /* stop accepting */
    bh__streams_close_all(); /* open streams would otherwise hold the drain */
    int64_t now = bh_now_ms();
    int64_t deadline = now + grace_ms, settle = now + FRESH_SETTLE_MS;
    while (now < deadline &&
           (atomic_load(&in_flight) > 0 || (atomic_load(&fresh) > 0 && now < settle))) {
        bh_sleep_ms(5);
        now = bh_now_ms();
    }
    int left = atomic_load(&in_flight);
    if (left > 0)
        bh_log(BH_LOG_WARN, "platform", "grace period over with %d requests in flight", left);
    /* No connection may stay parked when the daemon stops: the pools answer
     * what they still hold and resume it. */
    bh__pools_stop();
    MHD_stop_daemon(daemon_handle);
    bh__pools_free();
    if (s != MHD_INVALID_SOCKET)
        close(s);
    daemon_handle = NULL;
}
