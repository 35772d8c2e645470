/* The live stream's parts, shared by its four files and nothing else:
 *
 *   sse.c      one client: its buffer and the server-sent-event frames
 *              written into it (what a connection reads)
 *   hub.c      this process's clients, the Redis subscriber thread that
 *              feeds them, heartbeats, and the checks that end a stream
 *              whose session was revoked or whose token expired
 *   catchup.c  the Last-Event-ID replay from the database
 *   stream.c   GET /v1/me/notifications/stream: the three together
 *
 * Lock order: hub.lock, then a client's lock. Never block the subscriber
 * thread on a client, and never touch a client whose done() has run. */
#ifndef NOTIFICATIONS_STREAM_H
#define NOTIFICATIONS_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "internal.h"

#define NOTIF_CHANNEL_PREFIX "notifications:user:"

/* A live frame that arrived while its client was still catching up. */
struct notifications__early {
    struct notifications__early *next;
    bh_uuid id;
    char *frame;
};

/* One open stream. Fields before `lock` belong to hub.lock; the rest to
 * the client's own lock (taken by the server thread that reads it). */
struct notifications__client {
    struct notifications__client *next;
    uint64_t serial; /* tells this client from a later one at the same address */
    bh_uuid user_id;
    struct auth_session session; /* checked at every heartbeat, ended at its exp */
    struct bh_stream *stream;    /* NULL until the reply is queued */
    bool subscribed;             /* the user's channel is confirmed */
    bool gap;                    /* caught up before the channel was confirmed */
    pthread_mutex_t lock;
    char *buf;
    size_t len, off, cap;
    bool ended;     /* end the stream once buf is drained */
    bool ready;     /* catch-up written: live frames go to buf */
    bool beat_open; /* half a heartbeat written, the line end follows */
    struct notifications__early *early, *early_tail;
    bh_uuid *caught; /* ids written by the catch-up */
    size_t n_caught;
};

/* ---- sse.c ---------------------------------------------------------------- */

/* A new client of user_id's stream (NULL on OOM); freed by
 * notifications__client_free once nothing refers to it. */
struct notifications__client *notifications__client_new(const bh_uuid *user_id,
                                                        const struct auth_session *session);
void notifications__client_free(struct notifications__client *c);
/* "id: <id>\nevent: notification\ndata: <json>\n\n", malloc'd, its length
 * in *len; NULL on OOM. json must hold no line break. */
char *notifications__sse_frame(const char *id, const char *json, size_t json_len, size_t *len);
/* Appends bytes to c's buffer (c->lock held). A client that stopped
 * reading (CLIENT_BUFFER_MAX waiting) is ended instead. */
void notifications__sse_append_locked(struct notifications__client *c, const char *s, size_t n);
/* A live frame: into the buffer, or aside while the catch-up runs; never
 * one the catch-up already wrote. */
void notifications__sse_push(struct notifications__client *c, const bh_uuid *id, const char *frame,
                             size_t n);
/* After the catch-up (c->lock held): the frames set aside follow, minus the
 * ones it wrote, and live frames go straight to the buffer from now on. */
void notifications__sse_ready_locked(struct notifications__client *c);
/* Ends c once its buffer is drained. With reason, the client is first told
 * to authenticate again: "event: reauthenticate" with {"reason": reason}. */
void notifications__sse_end(struct notifications__client *c, const char *reason);
/* The first half of a heartbeat (a comment line) when c is idle; the
 * second half (the blank line) follows with notifications__sse_beat_close.
 * Written apart, a client that has gone answers the first write with a
 * reset and the second one fails: its slot is freed at this heartbeat. */
void notifications__sse_beat_open(struct notifications__client *c);
void notifications__sse_beat_close(struct notifications__client *c);
/* bh_stream_read_fn over c. */
long notifications__sse_read(void *arg, char *out, size_t max);

/* ---- hub.c ---------------------------------------------------------------- */

/* Registers a stream of session's user and makes sure their channel is
 * wanted. 0 with *out; BH_ELIMIT when this process holds
 * NOTIFICATIONS_STREAMS_MAX streams, BH_ERATELIMIT when the user holds
 * NOTIFICATIONS_STREAMS_PER_USER of them, BH_EUNAVAILABLE while stopping. */
int notifications__hub_register(const struct auth_session *session,
                                struct notifications__client **out);
/* Waits briefly until c's channel is confirmed (not while Redis is known to
 * be down), then records whether the catch-up may miss something (c->gap). */
void notifications__hub_wait_subscribed(struct notifications__client *c);
/* The reply is queued: wakes go to stream from now on. */
void notifications__hub_attach(struct notifications__client *c, struct bh_stream *stream);
/* bh_stream_done_fn: unregisters c and frees it. */
void notifications__hub_done(void *arg);
/* Seconds after which a vanished client's slot is free again (a heartbeat
 * interval, rounded up): the Retry-After of a refused stream. */
long notifications__hub_retry_after_s(void);

/* ---- catchup.c ------------------------------------------------------------ */

/* Writes the hello, then what c's user missed after last_id (may be NULL),
 * oldest first, then the frames that came meanwhile. 0 or a bh_err. */
int notifications__catch_up(struct notifications__client *c, const char *last_id);

#endif
