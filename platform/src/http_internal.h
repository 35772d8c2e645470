/* What the files of the HTTP edge share (http.c, router.c, reply.c,
 * stream.c, pool.c): the request as the platform sees it. Never included
 * outside platform/src: modules see struct bh_req only through http.h. */
#ifndef BH__PLATFORM_HTTP_INTERNAL_H
#define BH__PLATFORM_HTTP_INTERNAL_H

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform/metrics.h"
#include "platform/server.h"

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
    struct route_entry *route; /* NULL: no route matched */
    const char *allow;         /* then: the methods the path allows, or NULL (404) */
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
    char *resp_body;        /* malloc'd body, handed to MHD; NULL when none is owned */
    const char *resp_bytes; /* the body sent: resp_body, or bytes living as long as req */
    size_t resp_len;
    const char *resp_type;
    int64_t started_ms;
    bool queued;              /* the reply was handed to libmicrohttpd */
    bool offloaded;           /* handed to a handler pool; the connection is parked */
    int64_t enqueued_ms;      /* when it entered the pool's queue */
    struct bh_req *pool_next; /* in the pool's queue */
    size_t discarded;         /* body bytes read and dropped after a 413 */
    struct bh_stream *stream; /* a stream reply not yet handed to MHD */
};

/* ---- router.c ---- */
/* The route for the request's method and path, with its path parameters
 * set on req; NULL when none. When the path exists with other methods,
 * *allow receives them ("GET, POST", arena text). */
struct route_entry *bh__route_find(struct bh_req *req, const char **allow);

/* ---- http.c: the steps of a request that pool.c runs on its threads ---- */
/* Runs the route's handler and makes sure exactly one reply exists. */
void bh__run_handler(struct bh_req *req);
/* Logs and counts a request whose reply is ready. */
void bh__finish(struct bh_req *req);

/* ---- stream.c ---- */
/* The libmicrohttpd response that pulls s; NULL on OOM (s is then
 * released). From then on libmicrohttpd owns s. */
struct MHD_Response *bh__stream_response(struct bh_stream *s);
/* Unlinks s, lets its producer release its argument, and frees it. */
void bh__stream_release(struct bh_stream *s);
/* Ends every stream at its next read and resumes the parked ones. */
void bh__streams_close_all(void);

/* ---- pool.c ---- */
/* A step of a request that a pool thread runs (bh__run_handler, bh__finish). */
typedef void (*bh__request_step_fn)(struct bh_req *req);
/* Starts the threads of every handler pool a mounted route names; each
 * thread runs run and then finish on the requests queued for it (passed in,
 * so that pool.c never calls back into http.c). */
int bh__pools_start(bh__request_step_fn run, bh__request_step_fn finish);
/* Lets the pools finish what they run, answers what still waits with 503,
 * joins their threads; later requests for them get 503. */
void bh__pools_stop(void);
/* Stops (if not yet) and frees the pools: after the daemon stopped. */
void bh__pools_free(void);
/* Takes a place in the route's pool (503 when full, 429 when the client's
 * address holds its share), runs the route's admit(), then parks the
 * request and queues it. False (with a reply made) when refused. */
bool bh__offload(struct bh_req *req);
/* Runs the route's admit() if it has one: false when it refused (replied). */
bool bh__admit(struct bh_req *req);

#endif
