/* The HTTP edge: one request in, one reply out.
 *
 * A handler receives a struct bh_req (owned by the platform, valid until the
 * handler returns) and either replies with one of the bh_reply_* functions
 * and returns 0, or returns a negative bh_err and lets the platform answer
 * with the matching problem (RFC 9457). Everything a handler allocates from
 * bh_req_arena() is freed when the request ends. */
#ifndef BH_PLATFORM_HTTP_H
#define BH_PLATFORM_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "platform/arena.h"

struct bh_req;

/* Returns 0 after replying, or a negative bh_err (the platform replies). */
typedef int (*bh_handler_fn)(struct bh_req *req);

enum bh_route_flags {
    BH_ROUTE_NO_BODY_CHECK = 1 << 0, /* raw bodies (webhooks): no JSON parsing */
    BH_ROUTE_STREAM = 1 << 1,        /* the handler may reply with a stream */
    /* An operational route (metrics, introspection, dev tools): the platform
     * answers 401 before the handler runs unless the request carries
     * `Authorization: Bearer <BULKHEAD_OPS_TOKEN>`. */
    BH_ROUTE_OPS = 1 << 2,
};

struct bh_handler_pool;

struct bh_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/orgs/{org}/tasks/{id}" */
    bh_handler_fn handler;
    unsigned flags; /* enum bh_route_flags */
    /* NULL: the handler runs on the HTTP thread that read the request.
     * Otherwise it runs on this pool (see below). */
    struct bh_handler_pool *pool;
    /* NULL, or a cheap check that runs on the HTTP thread before the request
     * takes a place in the pool (a rate limit, say), so refusals never wait
     * for or hold a pool thread. Replying refuses the request (the handler
     * does not run); returning without a reply admits it. A non-zero return
     * without a reply is answered as an error. */
    bh_handler_fn admit;
};

/* A bulkhead for slow handlers (password hashing, say): the routes that name
 * a pool run their handlers on its own few threads. While a request waits or
 * runs there, its connection is parked and holds no HTTP thread, so a flood
 * of such requests cannot slow the other routes. A request finding the
 * queue full, or waiting in it longer than max_wait_ms, is answered 503 with
 * Retry-After at once; a client address holding per_client_max places is
 * answered 429 at once. The module owns the struct (a static) and may set
 * the numbers in its init; the platform starts the threads with the server. */
struct bh_handler_pool {
    const char *name; /* for logs and metrics, e.g. "auth.password" */
    int threads;      /* handlers running at once */
    int queue_max;    /* requests waiting, beyond which 503 */
    int max_wait_ms;  /* longest wait in the queue, beyond which 503 */
    /* Requests from one client address in the pool at once (waiting or
     * running), beyond which 429 with Retry-After; 0: no cap. Checked before
     * the route's admit(), so one address cannot take every place. */
    int per_client_max;
    struct bh_pool_state *state; /* the platform's; NULL until started */
};

/* ---- reading the request (all returned strings are borrowed) ---- */
const char *bh_req_method(const struct bh_req *req);
/* The path, canonical: no empty segments, percent-encoded where RFC 3986
 * requires it; safe to put in a header or a link. */
const char *bh_req_path(const struct bh_req *req);
/* The route pattern that matched ("/v1/orgs/{org}/tasks"). */
const char *bh_req_route(const struct bh_req *req);
/* A path parameter by name ("org"), or NULL. */
const char *bh_req_param(const struct bh_req *req, const char *name);
/* A query-string argument, or NULL. */
const char *bh_req_query(const struct bh_req *req, const char *name);
/* A query-string argument as an integer in [min, max]; dflt when absent.
 * When present but not such an integer, records a field error on req
 * ("must be an integer from min to max") and returns dflt. */
long bh_req_query_long(struct bh_req *req, const char *name, long dflt, long min, long max);
/* A request header (case-insensitive), or NULL. */
const char *bh_req_header(const struct bh_req *req, const char *name);
/* The raw body (may be empty, never NULL) and its length. */
const char *bh_req_body(const struct bh_req *req, size_t *len);
/* The parsed JSON body: a JSON object, or NULL when the request had no body.
 * Borrowed: the platform frees it. Malformed JSON never reaches a handler. */
json_t *bh_req_json(const struct bh_req *req);
struct bh_arena *bh_req_arena(struct bh_req *req);
const char *bh_req_id(const struct bh_req *req);
/* The client's address as text ("127.0.0.1"). */
const char *bh_req_client_addr(const struct bh_req *req);

/* A slot for the authenticated principal (set by auth, read by handlers).
 * The pointer is borrowed: it must live in the request arena. */
void bh_req_set_principal(struct bh_req *req, void *principal);
void *bh_req_principal(const struct bh_req *req);

/* ---- field validation: collect errors, then answer them all at once ---- */
/* Records a field error (copied). */
void bh_req_field_error(struct bh_req *req, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool bh_req_has_field_errors(const struct bh_req *req);
/* Answers 422 validation_failed with every recorded field error; returns 0. */
int bh_reply_field_errors(struct bh_req *req);

/* ---- replying (exactly once per request) ---- */
/* Adds a response header (copied). Call before bh_reply_*. */
void bh_reply_header(struct bh_req *req, const char *name, const char *value);
/* Replies with a JSON body; takes ownership of body (even on failure). */
int bh_reply_json(struct bh_req *req, unsigned status, json_t *body);
/* Replies with raw bytes (copied) and a content type. */
int bh_reply_raw(struct bh_req *req, unsigned status, const char *content_type, const char *body,
                 size_t len);
/* The same without any copy: body and content_type must live as long as the
 * request (in its arena, or static), and are sent as they are. */
int bh_reply_bytes(struct bh_req *req, unsigned status, const char *content_type, const char *body,
                   size_t len);
/* Replies with no body (204, 304). */
int bh_reply_empty(struct bh_req *req, unsigned status);
/* Replies application/problem+json {type,title,status,detail,code,request_id}.
 * extra (may be NULL; ownership taken) adds members such as "limit". */
int bh_reply_problem(struct bh_req *req, unsigned status, const char *code, const char *detail,
                     json_t *extra);
/* Replies the problem the platform uses for err (see err.h); detail may be NULL. */
int bh_reply_err(struct bh_req *req, int err, const char *detail);

/* ---- streaming replies (server-sent events) ----
 * A stream reply keeps the connection open and sends bytes whenever its
 * producer has some, without holding a server thread while it waits: when
 * read() has nothing, the platform parks (suspends) the connection, and
 * bh_stream_wake() puts it back into the event loop. A slow client costs a
 * socket and a buffer, never a thread. Only routes flagged BH_ROUTE_STREAM
 * may reply with a stream; on shutdown the platform ends every stream. */
struct bh_stream;

/* Returned by a bh_stream_read_fn to end the stream normally. */
#define BH_STREAM_END (-1L)
/* Called on a server thread when the client can take more: copy up to max
 * bytes into buf and return the count; 0 when nothing is ready (the
 * connection is parked until bh_stream_wake()); BH_STREAM_END to finish. */
typedef long (*bh_stream_read_fn)(void *arg, char *buf, size_t max);
/* Called exactly once when the stream is over (the client left, read()
 * ended it, the server is stopping, or the reply could not be queued).
 * It releases arg. Once it has returned, the bh_stream is gone. */
typedef void (*bh_stream_done_fn)(void *arg);

/* Replies status and content_type, then the bytes read() produces (chunked).
 * arg outlives the handler, so it must not live in the request arena; done()
 * is called exactly once, also when this function fails. On success *out
 * (may be NULL) receives the handle to wake. 0, BH_EINVAL (route not
 * flagged BH_ROUTE_STREAM) or BH_ENOMEM. */
int bh_reply_stream(struct bh_req *req, unsigned status, const char *content_type,
                    bh_stream_read_fn read, bh_stream_done_fn done, void *arg,
                    struct bh_stream **out);
/* The producer has bytes (or wants to end): a parked connection resumes and
 * read() is called again. Thread-safe. The caller must make sure done() has
 * not returned yet, e.g. by waking under the lock that done() takes to
 * unregister the stream. */
void bh_stream_wake(struct bh_stream *s);

/* HTTP status for a bh_err (the single mapping). */
unsigned bh_err_status(int err);

#endif
