/* The stream hub of this process: its clients, and the one subscriber
 * thread that feeds them. A new notification is published on the Redis
 * channel notifications:user:<id>; the subscriber thread listens, on one
 * connection (bh_redis_subscriber), to the channels of the users streaming
 * here and pushes frames into their clients. At every heartbeat it also asks
 * auth whether each stream's session still stands, and it ends a stream at
 * its token's exp: a stream is only as good as the token that opened it.
 * Never block the subscriber thread on a client, and never touch a client
 * whose done() has run. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "platform/clock.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"
#include "stream.h"

enum {
    SUBSCRIBE_WAIT_MS = 1000, /* how long a new stream waits for its channel */
    RECONNECT_MS = 1000,      /* between attempts to reach Redis */
    BEAT_PROBE_MS = 200,      /* between a heartbeat's two halves */
};

/* A user's channel on the subscriber connection, and how many streams of
 * theirs this process holds. */
enum sub_state { SUB_NONE, SUB_SENT, SUB_CONFIRMED, SUB_LEAVING };
struct sub {
    char user[37];
    int clients;
    enum sub_state state;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t confirmed; /* broadcast when a channel is confirmed */
    struct notifications__client *clients;
    int n_clients;
    uint64_t next_serial;
    struct sub *subs;
    size_t n_subs, cap_subs;
    bool started, stopping;
    bool redis_down;    /* the last attempt to reach Redis failed */
    bool subscriber_up; /* the subscriber connection is open */
    int wake[2];        /* a byte here wakes the subscriber thread */
    pthread_t thread;
    long heartbeat_ms;
    long max_streams;
    long max_per_user;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

/* ---- registry (hub.lock) ------------------------------------------------------ */

static void wake_thread(void)
{
    if (hub.wake[1] >= 0) {
        ssize_t w = write(hub.wake[1], "x", 1);
        (void)w; /* a full pipe already means "wake up" */
    }
}

static struct sub *sub_find_locked(const char *user)
{
    for (size_t i = 0; i < hub.n_subs; i++)
        if (strcmp(hub.subs[i].user, user) == 0)
            return &hub.subs[i];
    return NULL;
}

static void wake_client_locked(struct notifications__client *c)
{
    if (c->stream)
        bh_stream_wake(c->stream);
}

void notifications__hub_done(void *arg)
{
    struct notifications__client *c = arg;
    pthread_mutex_lock(&hub.lock);
    for (struct notifications__client **p = &hub.clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            hub.n_clients--;
            struct sub *s = sub_find_locked(c->user_id.str);
            if (s && --s->clients == 0)
                wake_thread(); /* unsubscribe */
            break;
        }
    }
    pthread_mutex_unlock(&hub.lock);
    notifications__client_free(c);
}

/* Frames for everyone streaming as user (the subscriber thread). */
static void hub_deliver(const char *user, const char *payload, size_t len)
{
    json_error_t jerr;
    json_t *n = json_loadb(payload, len, 0, &jerr);
    const char *id = json_string_value(json_object_get(n, "id"));
    bh_uuid uid;
    /* Only this module publishes here (the ACL), but a frame must never
     * carry a line break into the event stream. */
    if (!id || !bh_uuid_parse(id, &uid) || memchr(payload, '\n', len) ||
        memchr(payload, '\r', len)) {
        bh_log_warn("stream: malformed message on %s%s dropped", NOTIF_CHANNEL_PREFIX, user);
        json_decref(n);
        return;
    }
    json_decref(n);
    size_t flen = 0;
    char *frame = notifications__sse_frame(uid.str, payload, len, &flen);
    if (!frame)
        return;
    pthread_mutex_lock(&hub.lock);
    for (struct notifications__client *c = hub.clients; c; c = c->next) {
        if (strcmp(c->user_id.str, user) == 0) {
            notifications__sse_push(c, &uid, frame, flen);
            wake_client_locked(c);
        }
    }
    pthread_mutex_unlock(&hub.lock);
    free(frame);
}

/* A heartbeat in two halves (see notifications__sse_beat_open): the first
 * when the beat is due, the second BEAT_PROBE_MS later. Both wake the
 * connection, so a vanished client is noticed by the failed write. */
static void hub_heartbeat(bool second_half)
{
    pthread_mutex_lock(&hub.lock);
    for (struct notifications__client *c = hub.clients; c; c = c->next) {
        if (second_half)
            notifications__sse_beat_close(c);
        else
            notifications__sse_beat_open(c);
        wake_client_locked(c);
    }
    pthread_mutex_unlock(&hub.lock);
}

/* ---- sessions: a stream ends with its session --------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends the streams whose token has expired; returns the milliseconds until
 * the next one expires (or `within` when none does sooner). */
static int64_t hub_expire(int64_t within)
{
    int64_t now = wall_ms(), next = within;
    pthread_mutex_lock(&hub.lock);
    for (struct notifications__client *c = hub.clients; c; c = c->next) {
        int64_t left = c->session.expires_at * 1000 - now;
        if (left <= 0) {
            notifications__sse_end(c, "token_expired");
            wake_client_locked(c);
        } else if (left < next) {
            next = left;
        }
    }
    pthread_mutex_unlock(&hub.lock);
    return next;
}

/* Asks auth about every stream's session (outside hub.lock: it may take a
 * Redis or Postgres round trip) and ends the revoked ones, telling their
 * clients to authenticate again. A session nobody can vouch for (Redis and
 * Postgres both unreachable) is ended too; the client's reconnect is
 * authenticated afresh. */
static void hub_check_sessions(void)
{
    struct check {
        uint64_t serial;
        struct auth_session session;
        int rc;
    } *v = NULL;
    size_t n = 0;
    pthread_mutex_lock(&hub.lock);
    if (hub.n_clients > 0 && (v = calloc((size_t)hub.n_clients, sizeof *v)) != NULL)
        for (struct notifications__client *c = hub.clients; c; c = c->next)
            v[n++] = (struct check){c->serial, c->session, 0};
    pthread_mutex_unlock(&hub.lock);
    for (size_t i = 0; i < n; i++) {
        /* One question per session: its other streams share the answer. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[j].session.token_id.str, v[i].session.token_id.str) == 0) {
                v[i].rc = v[j].rc;
                goto next;
            }
        v[i].rc = auth_session_check(&v[i].session);
    next:;
    }
    pthread_mutex_lock(&hub.lock);
    for (struct notifications__client *c = hub.clients; c; c = c->next)
        for (size_t i = 0; i < n; i++)
            if (v[i].serial == c->serial && v[i].rc != 0) {
                notifications__sse_end(c, v[i].rc == BH_EUNAUTH ? "session_revoked"
                                                                : "session_unverified");
                wake_client_locked(c);
            }
    pthread_mutex_unlock(&hub.lock);
    free(v);
}

/* ---- the subscriber connection -------------------------------------------------- */

/* The subscriber lost Redis: every open stream missed what was published
 * meanwhile, so each is ended and its client resumes from the inbox. */
static void hub_lost_locked(void)
{
    hub.redis_down = true;
    size_t keep = 0;
    for (size_t i = 0; i < hub.n_subs; i++) {
        hub.subs[i].state = SUB_NONE;
        if (hub.subs[i].clients > 0)
            hub.subs[keep++] = hub.subs[i];
    }
    hub.n_subs = keep;
    for (struct notifications__client *c = hub.clients; c; c = c->next) {
        c->subscribed = false;
        notifications__sse_end(c, NULL);
        wake_client_locked(c);
    }
}

static void hub_confirmed(const char *user)
{
    pthread_mutex_lock(&hub.lock);
    struct sub *s = sub_find_locked(user);
    if (s && s->state == SUB_SENT) {
        s->state = SUB_CONFIRMED;
        for (struct notifications__client *c = hub.clients; c; c = c->next) {
            if (strcmp(c->user_id.str, user) != 0)
                continue;
            c->subscribed = true;
            if (c->gap) { /* it may have missed something: resume */
                notifications__sse_end(c, NULL);
                wake_client_locked(c);
            }
        }
        pthread_cond_broadcast(&hub.confirmed);
    }
    pthread_mutex_unlock(&hub.lock);
}

static void hub_left(const char *user)
{
    pthread_mutex_lock(&hub.lock);
    struct sub *s = sub_find_locked(user);
    if (s && s->state == SUB_LEAVING) {
        s->state = SUB_NONE;
        wake_thread(); /* someone may want it again */
    }
    pthread_mutex_unlock(&hub.lock);
}

/* Sends the SUBSCRIBE/UNSUBSCRIBE commands the clients' coming and going
 * call for. 0, or -1 when the connection failed. */
static int subscriber_reconcile(redisContext *c)
{
    bool queued = false;
    pthread_mutex_lock(&hub.lock);
    size_t keep = 0;
    for (size_t i = 0; i < hub.n_subs; i++) {
        struct sub *s = &hub.subs[i];
        if (s->clients > 0 && s->state == SUB_NONE) {
            redisAppendCommand(c, "SUBSCRIBE " NOTIF_CHANNEL_PREFIX "%s", s->user);
            s->state = SUB_SENT;
            queued = true;
        } else if (s->clients == 0 && (s->state == SUB_SENT || s->state == SUB_CONFIRMED)) {
            redisAppendCommand(c, "UNSUBSCRIBE " NOTIF_CHANNEL_PREFIX "%s", s->user);
            s->state = SUB_LEAVING;
            queued = true;
        }
        if (s->clients > 0 || s->state != SUB_NONE)
            hub.subs[keep++] = *s;
    }
    hub.n_subs = keep;
    pthread_mutex_unlock(&hub.lock);
    int done = !queued;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    return 0;
}

/* A PING sent on the subscriber connection and not answered yet. Only the
 * subscriber thread touches it. */
static bool ping_outstanding;

static void subscriber_reply(const redisReply *r)
{
    /* PONG comes as ["pong", ""] while subscribed to a channel, else as a
     * plain status. */
    if ((r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0) ||
        (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
         r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "pong") == 0)) {
        ping_outstanding = false;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str, *channel = r->element[1]->str;
    if (strncmp(channel, NOTIF_CHANNEL_PREFIX, strlen(NOTIF_CHANNEL_PREFIX)) != 0)
        return;
    const char *user = channel + strlen(NOTIF_CHANNEL_PREFIX);
    if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING)
        hub_deliver(user, r->element[2]->str, r->element[2]->len);
    else if (strcmp(kind, "subscribe") == 0)
        hub_confirmed(user);
    else if (strcmp(kind, "unsubscribe") == 0)
        hub_left(user);
}

/* Reads what Redis sent. 0, or -1 when the connection failed. */
static int subscriber_read(redisContext *c)
{
    if (redisBufferRead(c) != REDIS_OK)
        return -1;
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
            return -1;
        if (!reply)
            return 0;
        subscriber_reply(reply);
        freeReplyObject(reply);
    }
}

/* Opens the subscriber connection, or notes that Redis is away (warned
 * once per outage). */
static redisContext *subscriber_open(bool *warned)
{
    redisContext *c = bh_redis_subscriber();
    pthread_mutex_lock(&hub.lock);
    hub.redis_down = c == NULL;
    hub.subscriber_up = c != NULL;
    if (!c)
        pthread_cond_broadcast(&hub.confirmed); /* nobody should wait for it now */
    pthread_mutex_unlock(&hub.lock);
    if (c) {
        bh_log_info("stream: subscriber connected to Redis");
        ping_outstanding = false;
        *warned = false;
    } else if (!*warned) {
        bh_log_warn("stream: Redis unreachable; live pushes pause, streams resume from the "
                    "inbox when it is back");
        *warned = true;
    }
    return c;
}

/* The heartbeat's Redis half: a PING unanswered for a whole heartbeat
 * interval counts as a lost connection (a hung Redis, or a path that
 * silently drops packets, closes nothing). 0, or -1 when lost. */
static int subscriber_ping(redisContext *c)
{
    if (ping_outstanding)
        return -1;
    redisAppendCommand(c, "PING");
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    ping_outstanding = true;
    return 0;
}

static void subscriber_lost(void)
{
    bh_log_warn("stream: lost the Redis subscriber connection; open streams are ended");
    pthread_mutex_lock(&hub.lock);
    hub.subscriber_up = false;
    hub_lost_locked();
    pthread_cond_broadcast(&hub.confirmed);
    pthread_mutex_unlock(&hub.lock);
}

/* Waits for Redis, a wake-up or the next deadline; drains the wake pipe.
 * Returns poll's revents for the Redis connection. */
static short subscriber_wait(redisContext *c, int64_t until)
{
    struct pollfd fds[2] = {{.fd = hub.wake[0], .events = POLLIN},
                            {.fd = c ? c->fd : -1, .events = POLLIN}};
    int64_t now = bh_now_ms();
    int timeout = until > now ? (int)(until - now) : 0;
    if (poll(fds, 2, timeout) < 0 && errno != EINTR)
        bh_log_error("stream: poll: %s", strerror(errno));
    if (fds[0].revents & POLLIN) {
        char drain[64];
        while (read(hub.wake[0], drain, sizeof drain) > 0)
            ;
    }
    return fds[1].revents;
}

static bool hub_stopping(void)
{
    pthread_mutex_lock(&hub.lock);
    bool stopping = hub.stopping;
    pthread_mutex_unlock(&hub.lock);
    return stopping;
}

static void *subscriber_main(void *arg)
{
    (void)arg;
    redisContext *c = NULL;
    int64_t next_beat = bh_now_ms() + hub.heartbeat_ms, next_connect = 0, beat_close = -1;
    bool warned = false;
    while (!hub_stopping()) {
        int64_t now = bh_now_ms();
        if (!c && now >= next_connect && !(c = subscriber_open(&warned)))
            next_connect = now + RECONNECT_MS;
        bool lost = c && subscriber_reconcile(c) != 0;

        int64_t until = now + hub_expire(next_beat - now);
        if (!c && next_connect < until)
            until = next_connect;
        if (beat_close >= 0 && beat_close < until)
            until = beat_close;
        short revents = lost ? 0 : subscriber_wait(c, until);
        if (c && !lost && (revents & (POLLIN | POLLERR | POLLHUP)) && subscriber_read(c) != 0)
            lost = true;

        now = bh_now_ms();
        if (beat_close >= 0 && now >= beat_close) {
            hub_heartbeat(true);
            beat_close = -1;
        }
        if (now >= next_beat) {
            hub_check_sessions();
            hub_heartbeat(false);
            beat_close = bh_now_ms() + BEAT_PROBE_MS;
            next_beat = bh_now_ms() + hub.heartbeat_ms;
            if (c && !lost && subscriber_ping(c) != 0)
                lost = true;
        }
        if (lost) {
            redisFree(c);
            c = NULL;
            next_connect = 0; /* at once: Redis itself may be fine */
            subscriber_lost();
        }
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- metrics, start and stop ------------------------------------------------------ */

static void streams_gauge(struct bh_buf *out, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hub.lock);
    int n = hub.n_clients;
    pthread_mutex_unlock(&hub.lock);
    bh_metrics_printf(out, "bulkhead_notifications_streams %d\n", n);
}

static void subscriber_gauge(struct bh_buf *out, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hub.lock);
    bool up = hub.subscriber_up;
    pthread_mutex_unlock(&hub.lock);
    bh_metrics_printf(out, "bulkhead_notifications_stream_subscriber_up %d\n", up ? 1 : 0);
}

/* The subscriber thread starts with the first stream, so `bulkhead worker`
 * and the CLI never open the connection. */
static int hub_start_locked(void)
{
    if (hub.started)
        return 0;
    if (hub.stopping)
        return BH_EUNAVAILABLE;
    hub.heartbeat_ms = bh_config_int("NOTIFICATIONS_STREAM_HEARTBEAT_MS", 15000, 100, 600000);
    hub.max_streams = bh_config_int("NOTIFICATIONS_STREAMS_MAX", 256, 1, 100000);
    hub.max_per_user = bh_config_int("NOTIFICATIONS_STREAMS_PER_USER", 5, 1, 1000);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&hub.confirmed, &attr);
    pthread_condattr_destroy(&attr);
    if (pipe2(hub.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        hub.wake[0] = hub.wake[1] = -1;
        return BH_EINTERNAL;
    }
    if (pthread_create(&hub.thread, NULL, subscriber_main, NULL) != 0) {
        close(hub.wake[0]);
        close(hub.wake[1]);
        hub.wake[0] = hub.wake[1] = -1;
        return BH_EINTERNAL;
    }
    hub.started = true;
    return 0;
}

/* Once, and never under hub.lock: rendering /metrics holds the registry's
 * lock while it calls these gauges, which take hub.lock. */
static void register_gauges(void)
{
    bh_gauge_register("bulkhead_notifications_streams",
                      "Open notification streams (server-sent events) in this process.",
                      streams_gauge, NULL);
    bh_gauge_register("bulkhead_notifications_stream_subscriber_up",
                      "1 while this process's Redis subscriber connection is open.",
                      subscriber_gauge, NULL);
}

void notifications__stream_shutdown(void)
{
    pthread_mutex_lock(&hub.lock);
    bool started = hub.started;
    hub.stopping = true;
    for (struct notifications__client *c = hub.clients; c; c = c->next) {
        notifications__sse_end(c, NULL);
        wake_client_locked(c);
    }
    wake_thread();
    pthread_mutex_unlock(&hub.lock);
    if (!started)
        return;
    pthread_join(hub.thread, NULL);
    pthread_mutex_lock(&hub.lock);
    close(hub.wake[0]);
    close(hub.wake[1]);
    hub.wake[0] = hub.wake[1] = -1;
    free(hub.subs);
    hub.subs = NULL;
    hub.n_subs = hub.cap_subs = 0;
    hub.started = false;
    pthread_mutex_unlock(&hub.lock);
    pthread_cond_destroy(&hub.confirmed);
}

/* ---- publishing -------------------------------------------------------------------- */

int notifications__stream_publish(const char *user_id, const json_t *notification)
{
    char *payload = json_dumps(notification, JSON_COMPACT);
    if (!payload)
        return BH_ENOMEM;
    redisReply *r = NULL;
    int rc =
        bh_redis(&r, "PUBLISH " NOTIF_CHANNEL_PREFIX "%s %b", user_id, payload, strlen(payload));
    if (r)
        freeReplyObject(r);
    free(payload);
    if (rc != 0)
        bh_log_warn("stream: push to %s not published (%s); it is in the inbox", user_id,
                    bh_err_name(rc));
    return rc;
}

/* ---- clients coming -------------------------------------------------------------- */

/* The user's channel entry, made when missing (hub.lock held). */
static struct sub *sub_want_locked(const char *user)
{
    struct sub *s = sub_find_locked(user);
    if (s)
        return s;
    if (hub.n_subs == hub.cap_subs) {
        size_t cap = hub.cap_subs ? hub.cap_subs * 2 : 16;
        struct sub *v = realloc(hub.subs, cap * sizeof *v);
        if (!v)
            return NULL;
        hub.subs = v;
        hub.cap_subs = cap;
    }
    s = &hub.subs[hub.n_subs++];
    memset(s, 0, sizeof *s);
    snprintf(s->user, sizeof s->user, "%s", user);
    return s;
}

int notifications__hub_register(const struct auth_session *session,
                                struct notifications__client **out)
{
    struct notifications__client *c = notifications__client_new(&session->user_id, session);
    if (!c)
        return BH_ENOMEM;
    const char *user = session->user_id.str;
    static pthread_once_t gauges_once = PTHREAD_ONCE_INIT;
    pthread_once(&gauges_once, register_gauges);
    pthread_mutex_lock(&hub.lock);
    int rc = hub_start_locked();
    struct sub *s = rc == 0 ? sub_find_locked(user) : NULL;
    if (rc == 0 && hub.n_clients >= hub.max_streams)
        rc = BH_ELIMIT;
    else if (rc == 0 && s && s->clients >= hub.max_per_user)
        rc = BH_ERATELIMIT;
    else if (rc == 0 && !(s = sub_want_locked(user)))
        rc = BH_ENOMEM;
    if (rc == 0) {
        s->clients++;
        c->serial = ++hub.next_serial;
        c->subscribed = s->state == SUB_CONFIRMED;
        c->next = hub.clients;
        hub.clients = c;
        hub.n_clients++;
        wake_thread();
    }
    pthread_mutex_unlock(&hub.lock);
    if (rc != 0) {
        notifications__client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void notifications__hub_wait_subscribed(struct notifications__client *c)
{
    struct timespec until = bh_deadline_ms(SUBSCRIBE_WAIT_MS);
    pthread_mutex_lock(&hub.lock);
    while (!c->subscribed && !hub.redis_down && !hub.stopping)
        if (pthread_cond_timedwait(&hub.confirmed, &hub.lock, &until) == ETIMEDOUT)
            break;
    /* Not subscribed yet: what is published before the channel is live
     * reaches neither the catch-up nor the channel, so the confirmation,
     * whenever it comes (during the catch-up too), ends the stream and the
     * client resumes from Last-Event-ID. Decided before the catch-up runs. */
    c->gap = !c->subscribed;
    pthread_mutex_unlock(&hub.lock);
}

void notifications__hub_attach(struct notifications__client *c, struct bh_stream *stream)
{
    pthread_mutex_lock(&hub.lock);
    c->stream = stream;
    pthread_mutex_unlock(&hub.lock);
}

long notifications__hub_retry_after_s(void)
{
    pthread_mutex_lock(&hub.lock);
    long ms = hub.heartbeat_ms > 0 ? hub.heartbeat_ms : 15000;
    pthread_mutex_unlock(&hub.lock);
    return (ms + BEAT_PROBE_MS + 999) / 1000;
}
