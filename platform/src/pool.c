/* Handler pools (struct bh_handler_pool in http.h): a bulkhead for slow
 * routes. Their requests are parked and their handlers run on the pool's
 * own few threads, never on an HTTP thread; a full queue or a long wait is
 * a 503 at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

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
    struct bh_counter *rejected;
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
        free(ps);
    }
}

/* Parks the request and queues it on its route's pool. False (with a 503
 * reply made) when the queue is full. */
bool bh__offload(struct bh_req *req)
{
    struct bh_pool_state *ps = req->route->m.route.pool->state;
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
