/* Group commit: work items that callers on several threads submit at the
 * same time are run together, as one batch, by one of those callers.
 *
 * A caller that finds no batch running becomes the leader at once: it takes
 * the waiting items (its own among them, up to the bound) and runs the
 * batch function over them on its own thread. Items that arrive meanwhile
 * wait on a condition variable and form the next batch, which one of their
 * callers leads when the running batch is done. So nothing ever waits for a
 * batch to fill: a lone item runs at once, and batches grow only while one
 * is in flight. bh_combine() returns once a batch that held the caller's
 * item has run; whatever the batch function wrote into the item is then the
 * caller's to read. */
#ifndef BH_PLATFORM_COMBINE_H
#define BH_PLATFORM_COMBINE_H

struct bh_combiner;

/* Runs items[0..n-1] (1 <= n <= the bound), oldest first, and writes each
 * item's outcome into the item. Called on the leader's thread with no lock
 * held; the other callers of the batch are blocked until it returns, so
 * their items (and whatever they own) may be used freely. */
typedef void (*bh_combine_fn)(void *ctx, void *const *items, int n);

/* A combiner running fn(ctx, ...) over batches of at most max_batch items
 * (1..1024), at most one batch at a time. NULL on OOM or a bad bound. */
struct bh_combiner *bh_combiner_new(int max_batch, bh_combine_fn fn, void *ctx);
/* Frees c; no caller may be inside bh_combine() on it. NULL is allowed. */
void bh_combiner_free(struct bh_combiner *c);
/* Submits item and returns once fn has run over a batch holding it. */
void bh_combine(struct bh_combiner *c, void *item);

/* How many items wait for a batch now (not counting the running batch's):
 * for a gauge, and for tests that queue items behind a held batch. */
int bh_combiner_waiting(struct bh_combiner *c);

#endif
