/* Handler pools (struct bh_handler_pool in http.h): a bulkhead for slow
 * routes. Their requests are parked and their handlers run on the pool's
 * own few threads, never on an HTTP thread; a full queue or a long wait is
 * a 503 at once, one client address holding too many places a 429, and the
 * route's admission check runs before a place is given. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "platform/clock.h"
#include "platform/err.h"
#include "platform/log.h"

/* The platform's side of a struct bh_handler_pool: a FIFO of parked
 * requests and the threads that run their handlers. A request is parked
 * (MHD_suspend_connection) before it is queued, so the worker's resume can
 * never come first; libmicrohttpd calls on_request() again after the
 * resume, and that call sends the reply the worker prepared. */
struct bh_pool_state {
    struct bh_handler_pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct bh_req *head, *tail;
    int queued;
    bool stopping;
    pthread_t *threads;
    int n_threads;
    /* Places held per client address (pool->per_client_max > 0): at most
     * threads + queue_max addresses hold one at once. */
    struct client_places {
        char addr[INET6_ADDRSTRLEN];
        int n;
    } * clients;
    int n_clients;
    struct bh_counter *rejected;
    struct bh_counter *client_capped;
    struct bh_histogram *waited;
    struct bh_pool_state *next; /* all started pools */
};

static struct bh_pool_state *pools;

static void reply_busy(struct bh_req *req, const char *pool)
{
    bh_reply_header(req, "Retry-After", "1");
    bh_reply_problem(
        req, 503, "busy",
        bh_arena_printf(req->arena, "Too many %s requests at once; try again shortly.", pool),
        NULL);
}

/* The slot of addr in the places table, or a free one; NULL when full
 * (cannot happen while every place is counted). Under ps->lock. */
static struct client_places *client_slot(struct bh_pool_state *ps, const char *addr)
{
    struct client_places *free_slot = NULL;
    for (int i = 0; i < ps->n_clients; i++) {
        if (ps->clients[i].n > 0 && strcmp(ps->clients[i].addr, addr) == 0)
            return &ps->clients[i];
        if (ps->clients[i].n == 0 && !free_slot)
            free_slot = &ps->clients[i];
    }
    if (free_slot)
        snprintf(free_slot->addr, sizeof free_slot->addr, "%s", addr);
    return free_slot;
}

/* Gives a place back: the request left the queue unqueued or finished. */
static void place_release(struct bh_pool_state *ps, struct bh_req *req, bool was_queued)
{
    pthread_mutex_lock(&ps->lock);
    if (was_queued)
        ps->queued--;
    if (ps->clients) {
        struct client_places *c = client_slot(ps, req->client_addr);
        if (c && c->n > 0)
            c->n--;
    }
    pthread_mutex_unlock(&ps->lock);
}

/* The steps every pool thread runs: set once by bh__pools_start(), before
 * any pool thread exists. */
static bh__request_step_fn step_run, step_finish;

static void *pool_main(void *arg)
{
    struct bh_pool_state *ps = arg;
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
            step_run(req);
        }
        step_finish(req);
        bh_log_context_set(NULL, NULL);
        place_release(ps, req, false);
        MHD_resume_connection(req->conn);
    }
}

int bh__pools_start(bh__request_step_fn run, bh__request_step_fn finish)
{
    const struct bh_mounted_route *rs;
    size_t n_mounted = bh_server_routes(&rs);
    step_run = run;
    step_finish = finish;
    for (size_t i = 0; i < n_mounted; i++) {
        struct bh_handler_pool *pool = rs[i].route.pool;
        if (!pool || pool->state)
            continue;
        struct bh_pool_state *ps = calloc(1, sizeof *ps);
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
            bh_counter_get("bulkhead_http_pool_rejected_total",
                           "Requests answered 503 because their handler pool was full.", labels);
        ps->waited = bh_histogram_get("bulkhead_http_pool_wait_seconds",
                                      "Time requests waited for a handler pool thread.", labels);
        ps->client_capped = bh_counter_get(
            "bulkhead_http_pool_client_capped_total",
            "Requests answered 429 because their address held too many pool places.", labels);
        if (pool->per_client_max > 0) {
            ps->n_clients = n + (pool->queue_max > 0 ? pool->queue_max : 0);
            ps->clients = calloc((size_t)ps->n_clients, sizeof *ps->clients);
            if (!ps->clients) {
                free(ps->threads);
                free(ps);
                return BH_ENOMEM;
            }
        }
        pool->state = ps;
        ps->next = pools;
        pools = ps;
        for (; ps->n_threads < n; ps->n_threads++)
            if (pthread_create(&ps->threads[ps->n_threads], NULL, pool_main, ps) != 0)
                return BH_ENOMEM;
    }
    return 0;
}

/* Lets the pools finish what they hold (what still waits is answered 503)
 * and joins their threads. The state stays: HTTP threads may still look at
 * it, and a request that comes now is answered 503 (stopping). */
void bh__pools_stop(void)
{
    for (struct bh_pool_state *ps = pools; ps; ps = ps->next) {
        pthread_mutex_lock(&ps->lock);
        bool joined = ps->stopping;
        ps->stopping = true;
        pthread_cond_broadcast(&ps->work);
        pthread_mutex_unlock(&ps->lock);
        for (int i = 0; !joined && i < ps->n_threads; i++)
            pthread_join(ps->threads[i], NULL);
    }
}

/* Frees the stopped pools, once no HTTP thread is left to look at them. */
void bh__pools_free(void)
{
    bh__pools_stop();
    while (pools) {
        struct bh_pool_state *ps = pools;
        pools = ps->next;
        ps->pool->state = NULL;
        pthread_cond_destroy(&ps->work);
        pthread_mutex_destroy(&ps->lock);
        free(ps->threads);
        free(ps->clients);
        free(ps);
    }
}

/* Runs the route's admission check, if any. True when the request may go
 * on; false when admit() refused it (a reply exists). */
bool bh__admit(struct bh_req *req)
{
    bh_handler_fn admit = req->route->m.route.admit;
    if (!admit)
        return true;
    int rc = admit(req);
    if (!req->replied && rc != 0)
        bh_reply_err(req, rc, NULL);
    return !req->replied;
}

/* Takes a place in the pool for req: false (with a 503 or 429 reply made)
 * when the queue is full or req's address holds its share already. */
static bool place_take(struct bh_pool_state *ps, struct bh_req *req)
{
    bool busy = false, capped = false;
    pthread_mutex_lock(&ps->lock);
    struct client_places *c = ps->clients ? client_slot(ps, req->client_addr) : NULL;
    if (ps->queued >= ps->pool->queue_max || ps->stopping || (ps->clients && !c))
        busy = true;
    else if (c && c->n >= ps->pool->per_client_max)
        capped = true;
    else {
        ps->queued++;
        if (c)
            c->n++;
    }
    pthread_mutex_unlock(&ps->lock);
    if (busy) {
        bh_counter_add(ps->rejected, 1);
        reply_busy(req, ps->pool->name);
    } else if (capped) {
        bh_counter_add(ps->client_capped, 1);
        bh_reply_header(req, "Retry-After", "1");
        bh_reply_problem(req, 429, "too_many_concurrent",
                         bh_arena_printf(req->arena,
                                         "Too many %s requests from your address at once; "
                                         "wait for one to finish.",
                                         ps->pool->name),
                         NULL);
    }
    return !busy && !capped;
}

/* Takes a place, runs the admission check, then parks the request and
 * queues it on its route's pool. False (with a reply made) when refused. */
bool bh__offload(struct bh_req *req)
{
    struct bh_pool_state *ps = req->route->m.route.pool->state;
    if (!place_take(ps, req))
        return false;
    if (!bh__admit(req)) {
        place_release(ps, req, true);
        return false;
    }
    pthread_mutex_lock(&ps->lock);
    if (ps->stopping) { /* the threads may be gone: nobody would answer */
        pthread_mutex_unlock(&ps->lock);
        place_release(ps, req, true);
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
    pthread_cond_signal(&ps->work);
    pthread_mutex_unlock(&ps->lock);
    return true;
}
