/* One stream's client side: the bytes waiting for its connection, and the
 * server-sent-event frames that go into them. No I/O and no hub here: the
 * hub (hub.c) decides what to write, this file how, and the connection's
 * server thread reads it out through notifications__sse_read. A client
 * that stops reading is cut off, never buffered without bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/http.h"
#include "stream.h"

enum { CLIENT_BUFFER_MAX = 256 * 1024 }; /* unsent bytes before a slow client is cut off */

struct notifications__client *notifications__client_new(const bh_uuid *user_id,
                                                        const struct auth_session *session)
{
    struct notifications__client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->user_id = *user_id;
    c->session = *session;
    return c;
}

void notifications__client_free(struct notifications__client *c)
{
    for (struct notifications__early *e = c->early, *next; e; e = next) {
        next = e->next;
        free(e->frame);
        free(e);
    }
    free(c->caught);
    free(c->buf);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

char *notifications__sse_frame(const char *id, const char *json, size_t json_len, size_t *len)
{
    char *frame = NULL;
    int n =
        asprintf(&frame, "id: %s\nevent: notification\ndata: %.*s\n\n", id, (int)json_len, json);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return frame;
}

void notifications__sse_append_locked(struct notifications__client *c, const char *s, size_t n)
{
    if (c->ended)
        return;
    if (c->len - c->off + n > CLIENT_BUFFER_MAX) {
        /* It stopped reading: end the stream; it can resume from the inbox. */
        c->ended = true;
        return;
    }
    if (c->off > 0 && c->off == c->len)
        c->off = c->len = 0;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n)
            cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) {
            c->ended = true;
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

static bool was_caught(const struct notifications__client *c, const bh_uuid *id)
{
    for (size_t i = 0; i < c->n_caught; i++)
        if (strcmp(c->caught[i].str, id->str) == 0)
            return true;
    return false;
}

void notifications__sse_push(struct notifications__client *c, const bh_uuid *id, const char *frame,
                             size_t n)
{
    pthread_mutex_lock(&c->lock);
    if (c->ready) {
        if (!was_caught(c, id))
            notifications__sse_append_locked(c, frame, n);
    } else if (!c->ended) {
        struct notifications__early *e = calloc(1, sizeof *e);
        if (e && (e->frame = strndup(frame, n))) {
            e->id = *id;
            if (c->early_tail)
                c->early_tail->next = e;
            else
                c->early = e;
            c->early_tail = e;
        } else {
            free(e);
            c->ended = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void notifications__sse_ready_locked(struct notifications__client *c)
{
    for (struct notifications__early *e = c->early, *next; e; e = next) {
        next = e->next;
        if (!was_caught(c, &e->id))
            notifications__sse_append_locked(c, e->frame, strlen(e->frame));
        free(e->frame);
        free(e);
    }
    c->early = c->early_tail = NULL;
    c->ready = true;
}

void notifications__sse_end(struct notifications__client *c, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    if (reason && !c->ended) {
        char frame[128];
        int n =
            snprintf(frame, sizeof frame, "%sevent: reauthenticate\ndata: {\"reason\":\"%s\"}\n\n",
                     c->beat_open ? "\n" : "", reason);
        c->beat_open = false;
        if (n > 0 && (size_t)n < sizeof frame)
            notifications__sse_append_locked(c, frame, (size_t)n);
    }
    c->ended = true;
    pthread_mutex_unlock(&c->lock);
}

void notifications__sse_beat_open(struct notifications__client *c)
{
    static const char half[] = ": heartbeat\n";
    pthread_mutex_lock(&c->lock);
    if (c->ready && !c->beat_open && c->off == c->len) {
        notifications__sse_append_locked(c, half, sizeof half - 1);
        c->beat_open = true;
    }
    pthread_mutex_unlock(&c->lock);
}

void notifications__sse_beat_close(struct notifications__client *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->beat_open) {
        /* A comment line may precede a frame's fields, so a frame written
         * between the halves is still read as one event. */
        notifications__sse_append_locked(c, "\n", 1);
        c->beat_open = false;
    }
    pthread_mutex_unlock(&c->lock);
}

/* On a server thread, with the stream's lock held. */
long notifications__sse_read(void *arg, char *out, size_t max)
{
    struct notifications__client *c = arg;
    long n = 0;
    pthread_mutex_lock(&c->lock);
    if (c->off < c->len) {
        size_t avail = c->len - c->off;
        size_t take = avail < max ? avail : max;
        memcpy(out, c->buf + c->off, take);
        c->off += take;
        n = (long)take;
    } else if (c->ended) {
        n = BH_STREAM_END;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}
