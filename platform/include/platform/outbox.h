/* Publishing many events at once: the batched form of bh_outbox_publish()
 * (platform/events.h), for a transaction that carries several requests'
 * changes (group commit). Every event gets exactly the envelope
 * bh_outbox_publish() would give it; all of them are inserted by one
 * statement, held back like bh_outbox_publish()'s (bh_tx_defer), so they
 * commit with the transaction or not at all. */
#ifndef BH_PLATFORM_OUTBOX_H
#define BH_PLATFORM_OUTBOX_H

#include <jansson.h>

struct bh_tx;

/* One event, as bh_outbox_publish() takes it, plus the request it belongs
 * to: request_id and trace_id go into the envelope's trace (NULL: none).
 * data is borrowed. */
struct bh_outbox_event {
    const char *type, *org_id, *actor_id, *aggregate_id;
    const json_t *data;
    const char *request_id, *trace_id;
};

/* Publishes events[0..n-1] (1..BH_OUTBOX_BATCH_MAX), in order, on tx.
 * BH_EINVAL (nothing published) when any event is invalid, BH_ENOMEM. */
enum { BH_OUTBOX_BATCH_MAX = 256 };
int bh_outbox_publish_many(struct bh_tx *tx, const struct bh_outbox_event *events, int n);

#endif
