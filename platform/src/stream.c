/* Streaming replies (server-sent events and the like): libmicrohttpd pulls
 * bytes when the socket is writable, and a stream with nothing to send
 * parks its connection, so a waiting or slow client holds no thread. */
#include <pthread.h>
#include <stdlib.h>

#include "http_internal.h"
#include "platform/err.h"
#include "platform/log.h"

/* A streaming reply (bh_reply_stream). MHD pulls bytes through
 * stream_reader() when the socket is writable; when the producer has none,
 * the connection is suspended (parked, no thread held) until
 * bh_stream_wake() resumes it. In internal polling mode a reader that just
 * returned 0 would be called again at once (a busy loop): suspending is what
 * makes waiting free. `lock` spans "read nothing, then suspend", so a wake
 * cannot slip in between and be lost. */
struct bh_stream {
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    bh_stream_read_fn read;
    bh_stream_done_fn done;
    void *arg;
    bool suspended;                /* parked by stream_reader(), waiting for a wake */
    bool closing;                  /* the server is stopping: end at the next read */
    struct bh_stream *prev, *next; /* in the live list (streams_lock) */
};

/* Live streams, so that shutdown can end them: libmicrohttpd must not be
 * stopped while a connection is suspended. */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bh_stream *streams;
static bool streams_closing;
enum { STREAM_BLOCK_SIZE = 16 * 1024 };

void bh__stream_release(struct bh_stream *s)
{
    pthread_mutex_lock(&streams_lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&streams_lock);
    s->done(s->arg);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void stream_free_cb(void *cls)
{
    bh__stream_release(cls);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct bh_stream *s = cls;
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&s->lock);
    if (!s->closing) {
        long got = s->read(s->arg, buf, max);
        if (got > 0) {
            n = (size_t)got <= max ? (ssize_t)got : (ssize_t)max;
        } else if (got == 0) {
            s->suspended = true;
            MHD_suspend_connection(s->conn);
            n = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

int bh_reply_stream(struct bh_req *req, unsigned status, const char *content_type,
                    bh_stream_read_fn read, bh_stream_done_fn done, void *arg,
                    struct bh_stream **out)
{
    if (!req->route || !(req->route->m.route.flags & BH_ROUTE_STREAM) || req->replied) {
        bh_log(BH_LOG_ERROR, "platform", "%s %s may not reply with a stream", req->method,
               req->path);
        done(arg);
        return BH_EINVAL;
    }
    struct bh_stream *s = calloc(1, sizeof *s);
    if (!s) {
        done(arg);
        return BH_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->conn = req->conn;
    s->read = read;
    s->done = done;
    s->arg = arg;
    pthread_mutex_lock(&streams_lock);
    s->closing = streams_closing;
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    pthread_mutex_unlock(&streams_lock);
    req->stream = s;
    req->replied = true;
    req->status = status;
    req->resp_type = bh_arena_strdup(req->arena, content_type);
    if (out)
        *out = s;
    return 0;
}

void bh_stream_wake(struct bh_stream *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Ends every stream at its next read and resumes the parked ones. */
void bh__streams_close_all(void)
{
    pthread_mutex_lock(&streams_lock);
    streams_closing = true;
    for (struct bh_stream *s = streams; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        if (s->suspended) {
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&streams_lock);
}

struct MHD_Response *bh__stream_response(struct bh_stream *s)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK_SIZE, stream_reader, s, stream_free_cb);
    if (!resp)
        bh__stream_release(s);
    return resp;
}
