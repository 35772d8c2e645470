/* The live stream (server-sent events) and its hub. A new notification is
 * published on the Redis channel notifications:user:<id>; in every API
 * process one subscriber thread, on one Redis connection, listens to the
 * channels of the users streaming there and pushes frames into their
 * connections' buffers. A waiting stream holds no server thread (the
 * platform parks it, see bh_reply_stream); a client that stops reading is
 * cut off when its buffer is full. Never block the subscriber thread on a
 * client, and never let it touch a connection whose done() has run. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "internal.h"
#include "platform/clock.h"
#include "platform/breaker.h"
#include "platform/config.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"

#define CHANNEL_PREFIX "notifications:user:"

/* Notifications replayed on a Last-Event-ID resume (a macro: the replay's
 * note quotes it). */
#define CATCHUP_MAX    100
#define TEXT_OF(x)     #x
#define NUMBER_TEXT(x) TEXT_OF(x)
enum {
    CLIENT_BUFFER_MAX = 256 * 1024, /* unsent bytes before a slow client is cut off */
    SUBSCRIBE_WAIT_MS = 1000,       /* how long a new stream waits for its channel */
    RECONNECT_MS = 1000,            /* between attempts to reach Redis */
};

/* A live frame that arrived while its client was still catching up. */
struct early {
    struct early *next;
    char id[37];
    char *frame;
};

/* One open stream. Fields before `lock` belong to hub.lock; the rest to
 * the client's own lock (taken by the server thread that reads it). */
struct client {
    struct client *next;
    bh_uuid user_id;
    struct bh_stream *stream; /* NULL until the reply is queued */
    bool subscribed;          /* the user's channel is confirmed */
    bool gap;                 /* caught up before the channel was confirmed */
    pthread_mutex_t lock;
    char *buf;
    size_t len, off, cap;
    bool ended; /* end the stream at the next read */
    bool ready; /* catch-up written: live frames go to buf */
    struct early *early, *early_tail;
    char (*caught)[37]; /* ids written by the catch-up */
    size_t n_caught;
};

/* A user's channel on the subscriber connection. */
enum sub_state { SUB_NONE, SUB_SENT, SUB_CONFIRMED, SUB_LEAVING };
struct sub {
    char user[37];
    int clients;
    enum sub_state state;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t confirmed; /* broadcast when a channel is confirmed */
    struct client *clients;
    int n_clients;
    struct sub *subs;
    size_t n_subs, cap_subs;
    bool started, stopping;
    bool redis_down;    /* the last attempt to reach Redis failed */
    bool subscriber_up; /* the subscriber connection is open */
    int wake[2];        /* a byte here wakes the subscriber thread */
    pthread_t thread;
    long heartbeat_ms;
    long max_streams;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

/* ---- client buffers (client.lock) --------------------------------------- */

static void client_append_locked(struct client *c, const char *s, size_t n)
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

static bool was_caught(const struct client *c, const char *id)
{
    for (size_t i = 0; i < c->n_caught; i++)
        if (strcmp(c->caught[i], id) == 0)
            return true;
    return false;
}

/* A live frame: straight into the buffer, or aside during the catch-up. */
static void client_push(struct client *c, const char *id, const char *frame, size_t n)
{
    pthread_mutex_lock(&c->lock);
    if (c->ready) {
        if (!was_caught(c, id))
            client_append_locked(c, frame, n);
    } else if (!c->ended) {
        struct early *e = calloc(1, sizeof *e);
        if (e && (e->frame = strndup(frame, n))) {
            snprintf(e->id, sizeof e->id, "%s", id);
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

static void client_end(struct client *c)
{
    pthread_mutex_lock(&c->lock);
    c->ended = true;
    pthread_mutex_unlock(&c->lock);
}

static void client_free(struct client *c)
{
    for (struct early *e = c->early, *next; e; e = next) {
        next = e->next;
        free(e->frame);
        free(e);
    }
    free(c->caught);
    free(c->buf);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* bh_stream_read_fn: on a server thread, with the stream's lock held. */
static long client_read(void *arg, char *out, size_t max)
{
    struct client *c = arg;
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

/* ---- the hub (hub.lock) --------------------------------------------------- */

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

static void wake_client_locked(struct client *c)
{
    if (c->stream)
        bh_stream_wake(c->stream);
}

/* bh_stream_done_fn: the connection is over. */
static void client_done(void *arg)
{
    struct client *c = arg;
    pthread_mutex_lock(&hub.lock);
    for (struct client **p = &hub.clients; *p; p = &(*p)->next) {
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
    client_free(c);
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
        bh_log_warn("stream: malformed message on %s%s dropped", CHANNEL_PREFIX, user);
        json_decref(n);
        return;
    }
    char *frame = NULL;
    int flen =
        asprintf(&frame, "id: %s\nevent: notification\ndata: %.*s\n\n", uid.str, (int)len, payload);
    json_decref(n);
    if (flen < 0)
        return;
    pthread_mutex_lock(&hub.lock);
    for (struct client *c = hub.clients; c; c = c->next) {
        if (strcmp(c->user_id.str, user) == 0) {
            client_push(c, uid.str, frame, (size_t)flen);
            wake_client_locked(c);
        }
    }
    pthread_mutex_unlock(&hub.lock);
    free(frame);
}

static void hub_heartbeat(void)
{
    static const char beat[] = ": heartbeat\n\n";
    pthread_mutex_lock(&hub.lock);
    for (struct client *c = hub.clients; c; c = c->next) {
        pthread_mutex_lock(&c->lock);
        if (c->ready && c->off == c->len)
            client_append_locked(c, beat, sizeof beat - 1);
        pthread_mutex_unlock(&c->lock);
        /* Also how a vanished client is noticed: the write fails. */
        wake_client_locked(c);
    }
    pthread_mutex_unlock(&hub.lock);
}

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
    for (struct client *c = hub.clients; c; c = c->next) {
        c->subscribed = false;
        client_end(c);
        wake_client_locked(c);
    }
}

static void hub_confirmed(const char *user)
{
    pthread_mutex_lock(&hub.lock);
    struct sub *s = sub_find_locked(user);
    if (s && s->state == SUB_SENT) {
        s->state = SUB_CONFIRMED;
        for (struct client *c = hub.clients; c; c = c->next) {
            if (strcmp(c->user_id.str, user) != 0)
                continue;
            c->subscribed = true;
            if (c->gap) { /* it may have missed something: resume */
                client_end(c);
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

/* ---- the subscriber thread ------------------------------------------------- */

/* host, port and password from REDIS_URL (redis://[user[:pass]@]host[:port][/db]). */
static bool parse_redis_url(const char *url, char *host, size_t host_size, int *port,
                            char *password, size_t pw_size)
{
    *port = 6379;
    password[0] = '\0';
    if (!url || strncmp(url, "redis://", 8) != 0)
        return false;
    const char *p = url + 8, *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon)
            snprintf(password, pw_size, "%.*s", (int)(at - colon - 1), colon + 1);
        p = at + 1;
    }
    size_t n = strcspn(p, ":/");
    if (n == 0 || n >= host_size)
        return false;
    memcpy(host, p, n);
    host[n] = '\0';
    if (p[n] == ':')
        *port = atoi(p + n + 1);
    return *port > 0 && *port < 65536;
}

/* A dedicated connection: SUBSCRIBE takes a connection over for good, so
 * it cannot come from the request/reply pool of bh_redis(). It logs in as
 * this module's ACL user, whose channels are notifications:* only. */
static redisContext *subscriber_connect(void)
{
    const struct bh_config *cfg = bh_config();
    char host[256], url_pw[256];
    int port;
    if (!parse_redis_url(cfg->redis_url, host, sizeof host, &port, url_pw, sizeof url_pw)) {
        bh_log_error("stream: REDIS_URL is not redis://host:port");
        return NULL;
    }
    const char *pw = cfg->redis_password && *cfg->redis_password ? cfg->redis_password : url_pw;
    struct timeval tv = {cfg->redis_timeout_ms / 1000, (cfg->redis_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err)
        goto fail;
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    if (*pw) {
        redisReply *r = redisCommand(c, "AUTH %s %s", BH_MODULE_NAME, pw);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok)
            goto fail;
    }
    return c;
fail:
    if (c)
        redisFree(c);
    return NULL;
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
            redisAppendCommand(c, "SUBSCRIBE " CHANNEL_PREFIX "%s", s->user);
            s->state = SUB_SENT;
            queued = true;
        } else if (s->clients == 0 && (s->state == SUB_SENT || s->state == SUB_CONFIRMED)) {
            redisAppendCommand(c, "UNSUBSCRIBE " CHANNEL_PREFIX "%s", s->user);
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
    if (strncmp(channel, CHANNEL_PREFIX, strlen(CHANNEL_PREFIX)) != 0)
        return;
    const char *user = channel + strlen(CHANNEL_PREFIX);
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

static void *subscriber_main(void *arg)
{
    redisContext *c = NULL;
    int64_t next_beat = bh_now_ms() + hub.heartbeat_ms, next_connect = 0;
    bool warned = false;
    for (;;) {
        pthread_mutex_lock(&hub.lock);
        bool stopping = hub.stopping;
        pthread_mutex_unlock(&hub.lock);
        if (stopping)
            break;
        int64_t now = bh_now_ms();
        if (!c && now >= next_connect) {
            c = subscriber_connect();
            if (c) {
                bh_log_info("stream: subscriber connected to Redis");
                warned = false;
                ping_outstanding = false;
                pthread_mutex_lock(&hub.lock);
                hub.redis_down = false;
                hub.subscriber_up = true;
                pthread_mutex_unlock(&hub.lock);
            } else {
                pthread_mutex_lock(&hub.lock);
                hub.redis_down = true;
                pthread_cond_broadcast(&hub.confirmed); /* nobody should wait for it now */
                pthread_mutex_unlock(&hub.lock);
                if (!warned)
                    bh_log_warn("stream: Redis unreachable; live pushes pause, streams resume "
                                "from the inbox when it is back");
                warned = true;
                next_connect = now + RECONNECT_MS;
            }
        }
        if (c && subscriber_reconcile(c) != 0)
            goto lost;

        struct pollfd fds[2] = {{.fd = hub.wake[0], .events = POLLIN},
                                {.fd = c ? c->fd : -1, .events = POLLIN}};
        int64_t until = next_beat;
        if (!c && next_connect < until)
            until = next_connect;
        int timeout = until > now ? (int)(until - now) : 0;
        if (poll(fds, 2, timeout) < 0 && errno != EINTR)
            bh_log_error("stream: poll: %s", strerror(errno));
        if (fds[0].revents & POLLIN) {
            char drain[64];
            while (read(hub.wake[0], drain, sizeof drain) > 0)
                ;
        }
        if (c && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) && subscriber_read(c) != 0)
            goto lost;
        if (bh_now_ms() >= next_beat) {
            hub_heartbeat();
            next_beat = bh_now_ms() + hub.heartbeat_ms;
            /* A Redis that hangs (or a path that silently drops packets)
             * closes nothing: a PING unanswered for a whole heartbeat
             * interval counts as a lost connection. */
            if (c && ping_outstanding)
                goto lost;
            if (c) {
                redisAppendCommand(c, "PING");
                int done = 0;
                while (!done)
                    if (redisBufferWrite(c, &done) != REDIS_OK)
                        goto lost;
                ping_outstanding = true;
            }
        }
        continue;
    lost:
        bh_log_warn("stream: lost the Redis subscriber connection; open streams are ended");
        redisFree(c);
        c = NULL;
        next_connect = 0; /* at once: Redis itself may be fine */
        pthread_mutex_lock(&hub.lock);
        hub.subscriber_up = false;
        hub_lost_locked();
        pthread_cond_broadcast(&hub.confirmed);
        pthread_mutex_unlock(&hub.lock);
    }
    if (c)
        redisFree(c);
    return NULL;
}

static void streams_gauge(struct bh_buf *out, void *arg)
{
    pthread_mutex_lock(&hub.lock);
    int n = hub.n_clients;
    pthread_mutex_unlock(&hub.lock);
    bh_metrics_printf(out, "bulkhead_notifications_streams %d\n", n);
}

static void subscriber_gauge(struct bh_buf *out, void *arg)
{
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
    for (struct client *c = hub.clients; c; c = c->next) {
        client_end(c);
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

/* ---- publishing ------------------------------------------------------------ */

int notifications__stream_publish(const char *user_id, const json_t *notification)
{
    char *payload = json_dumps(notification, JSON_COMPACT);
    if (!payload)
        return BH_ENOMEM;
    redisReply *r = NULL;
    int rc = bh_redis(&r, "PUBLISH " CHANNEL_PREFIX "%s %b", user_id, payload, strlen(payload));
    if (r)
        freeReplyObject(r);
    free(payload);
    if (rc != 0)
        bh_log_warn("stream: push to %s not published (%s); it is in the inbox", user_id,
                    bh_err_name(rc));
    return rc;
}

/* ---- serving a stream ------------------------------------------------------ */

/* Registers a client for user and makes sure its channel is wanted. */
static int hub_register(const char *user, struct client **out)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return BH_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    bh_uuid_parse(user, &c->user_id);
    static pthread_once_t gauges_once = PTHREAD_ONCE_INIT;
    pthread_once(&gauges_once, register_gauges);
    pthread_mutex_lock(&hub.lock);
    int rc = hub_start_locked();
    if (rc == 0 && hub.n_clients >= hub.max_streams)
        rc = BH_ELIMIT;
    struct sub *s = rc == 0 ? sub_find_locked(user) : NULL;
    if (rc == 0 && !s) {
        if (hub.n_subs == hub.cap_subs) {
            size_t cap = hub.cap_subs ? hub.cap_subs * 2 : 16;
            struct sub *v = realloc(hub.subs, cap * sizeof *v);
            if (!v)
                rc = BH_ENOMEM;
            else {
                hub.subs = v;
                hub.cap_subs = cap;
            }
        }
        if (rc == 0) {
            s = &hub.subs[hub.n_subs++];
            memset(s, 0, sizeof *s);
            snprintf(s->user, sizeof s->user, "%s", user);
        }
    }
    if (rc == 0) {
        s->clients++;
        c->subscribed = s->state == SUB_CONFIRMED;
        c->next = hub.clients;
        hub.clients = c;
        hub.n_clients++;
        wake_thread();
    }
    pthread_mutex_unlock(&hub.lock);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Waits (briefly) until the subscriber confirms c's channel, so that what
 * the catch-up does not see, the channel will. Not at all when Redis is
 * known to be down. */
static void hub_wait_subscribed(struct client *c)
{
    struct timespec until = bh_deadline_ms(SUBSCRIBE_WAIT_MS);
    pthread_mutex_lock(&hub.lock);
    while (!c->subscribed && !hub.redis_down && !hub.stopping)
        if (pthread_cond_timedwait(&hub.confirmed, &hub.lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&hub.lock);
}

/* Writes the replay (oldest first) into c and lets the live frames that
 * came meanwhile follow, minus those the replay already had. A client that
 * missed more than CATCHUP_MAX gets the newest ones, so nothing is missing
 * between the replay and the live frames; the rest is in the inbox. */
static int catch_up(struct client *c, const char *last_id)
{
    PGresult *r = NULL;
    int n = 0;
    bool truncated = false;
    if (last_id) {
        int rc = notifications__repo_since(c->user_id.str, last_id, CATCHUP_MAX + 1, &r);
        if (rc != 0)
            return rc;
        n = PQntuples(r);
        truncated = n > CATCHUP_MAX;
        if (truncated)
            n = CATCHUP_MAX;
    }
    pthread_mutex_lock(&c->lock);
    /* retry: how long a disconnected EventSource waits before it resumes. */
    static const char hello[] = "retry: 2000\n: connected\n\n";
    client_append_locked(c, hello, sizeof hello - 1);
    if (truncated) {
        static const char note[] = ": replay holds the newest " NUMBER_TEXT(
            CATCHUP_MAX) " only; GET /v1/me/notifications has the rest\n\n";
        client_append_locked(c, note, sizeof note - 1);
    }
    c->caught = n ? calloc((size_t)n, sizeof *c->caught) : NULL;
    for (int i = n - 1; i >= 0; i--) { /* the rows are newest first */
        json_t *row = notifications__row_json(r, i);
        char *data = row ? json_dumps(row, JSON_COMPACT) : NULL;
        char *frame = NULL;
        int len = data ? asprintf(&frame, "id: %s\nevent: notification\ndata: %s\n\n",
                                  bh_pg_str(r, i, NCOL_ID), data)
                       : -1;
        if (len > 0)
            client_append_locked(c, frame, (size_t)len);
        if (c->caught)
            snprintf(c->caught[c->n_caught++], sizeof c->caught[0], "%s", bh_pg_str(r, i, NCOL_ID));
        free(frame);
        free(data);
        json_decref(row);
    }
    for (struct early *e = c->early, *next; e; e = next) {
        next = e->next;
        if (!was_caught(c, e->id))
            client_append_locked(c, e->frame, strlen(e->frame));
        free(e->frame);
        free(e);
    }
    c->early = c->early_tail = NULL;
    c->ready = true;
    pthread_mutex_unlock(&c->lock);
    PQclear(r);
    return 0;
}

int notifications__stream_serve(struct bh_req *req, const char *user_id, const char *last_id)
{
    struct client *c = NULL;
    int rc = hub_register(user_id, &c);
    if (rc == BH_ELIMIT) {
        bh_reply_header(req, "Retry-After", "5");
        return bh_reply_problem(req, 503, "stream_capacity",
                                "This server has as many open streams as it takes; retry.", NULL);
    }
    if (rc != 0)
        return rc;
    hub_wait_subscribed(c);
    /* Not subscribed yet: what is published before the channel is live
     * reaches neither the catch-up nor the channel, so the confirmation,
     * whenever it comes (during the catch-up too), ends the stream and the
     * client resumes from Last-Event-ID. Decided before the catch-up runs. */
    pthread_mutex_lock(&hub.lock);
    c->gap = !c->subscribed;
    pthread_mutex_unlock(&hub.lock);
    if ((rc = catch_up(c, last_id)) != 0) {
        client_done(c);
        return rc;
    }

    bh_reply_header(req, "Cache-Control", "no-store");
    bh_reply_header(req, "X-Accel-Buffering", "no"); /* proxies: do not buffer the stream */
    struct bh_stream *stream = NULL;
    rc = bh_reply_stream(req, 200, "text/event-stream; charset=utf-8", client_read, client_done, c,
                         &stream);
    if (rc != 0)
        return rc; /* client_done has run */
    pthread_mutex_lock(&hub.lock);
    c->stream = stream;
    pthread_mutex_unlock(&hub.lock);
    return 0;
}
