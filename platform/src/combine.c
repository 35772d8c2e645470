/* The group-commit combiner (platform/combine.h): a FIFO of waiting items,
 * a flag for the batch in flight, and one condition variable. The leader
 * takes a batch from the head of the queue under the lock, runs it without
 * the lock, then marks its items done and wakes everyone: the callers whose
 * items are done return, and one of the others leads the next batch. */
#include "platform/combine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

enum { MAX_BATCH_BOUND = 1024 };

/* One waiting caller: lives on its caller's stack until done. */
struct slot {
    void *item;
    struct slot *next;
    bool done;
};

struct bh_combiner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bh_combine_fn fn;
    void *ctx;
    int max_batch;
    bool running;             /* a leader is running a batch */
    struct slot *head, *tail; /* the items no batch has taken yet */
    struct slot **taken;      /* the running batch's slots (max_batch) */
    void **items;             /* ... and their items, as fn sees them */
};

struct bh_combiner *bh_combiner_new(int max_batch, bh_combine_fn fn, void *ctx)
{
    struct bh_combiner *c;

    if (max_batch < 1 || max_batch > MAX_BATCH_BOUND || fn == NULL)
        return NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->taken = calloc((size_t)max_batch, sizeof *c->taken);
    c->items = calloc((size_t)max_batch, sizeof *c->items);
    if (c->taken == NULL || c->items == NULL || pthread_mutex_init(&c->mu, NULL) != 0)
        goto out_free;
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        goto out_free;
    }
    c->fn = fn;
    c->ctx = ctx;
    c->max_batch = max_batch;
    return c;

out_free:
    free(c->taken);
    free(c->items);
    free(c);
    return NULL;
}

void bh_combiner_free(struct bh_combiner *c)
{
    if (c == NULL)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->taken);
    free(c->items);
    free(c);
}

/* Takes up to max_batch slots from the head of the queue; c->mu is held. */
static int take_batch(struct bh_combiner *c)
{
    int n = 0;

    while (c->head != NULL && n < c->max_batch) {
        c->taken[n] = c->head;
        c->items[n] = c->head->item;
        c->head = c->head->next;
        n++;
    }
    if (c->head == NULL)
        c->tail = NULL;
    return n;
}

void bh_combine(struct bh_combiner *c, void *item)
{
    struct slot self = {.item = item};

    pthread_mutex_lock(&c->mu);
    if (c->tail != NULL)
        c->tail->next = &self;
    else
        c->head = &self;
    c->tail = &self;
    while (!self.done) {
        if (c->running) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        /* Lead: the oldest waiting items, which need not include our own
         * when more than a batch waits; then we loop and may lead again. */
        c->running = true;
        int n = take_batch(c);
        pthread_mutex_unlock(&c->mu);
        c->fn(c->ctx, c->items, n);
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < n; i++)
            c->taken[i]->done = true;
        c->running = false;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
}

int bh_combiner_waiting(struct bh_combiner *c)
{
    int n = 0;

    pthread_mutex_lock(&c->mu);
    for (const struct slot *s = c->head; s != NULL; s = s->next)
        n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}
