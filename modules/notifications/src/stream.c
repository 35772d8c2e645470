/* GET /v1/me/notifications/stream, once authenticated: a client joins the
 * hub (hub.c), waits for its channel, gets what it missed (catchup.c), and
 * its reply is handed to the platform as a stream that reads the client's
 * buffer (sse.c). Refusals come before any byte of the stream: 429 for a
 * user at their stream cap, 503 for a process at its own. */
#include <stdio.h>

#include "platform/err.h"
#include "stream.h"

int notifications__stream_serve(struct bh_req *req, const char *last_id)
{
    struct auth_session session;
    int rc = auth_request_session(req, &session);
    if (rc != 0)
        return rc;
    struct notifications__client *c = NULL;
    rc = notifications__hub_register(&session, &c);
    if (rc == BH_ELIMIT || rc == BH_ERATELIMIT) {
        char retry[24];
        snprintf(retry, sizeof retry, "%ld", notifications__hub_retry_after_s());
        bh_reply_header(req, "Retry-After", retry);
        if (rc == BH_ERATELIMIT)
            return bh_reply_problem(req, 429, "too_many_streams",
                                    "You have as many open streams as one user may; close one "
                                    "or retry.",
                                    NULL);
        return bh_reply_problem(req, 503, "stream_capacity",
                                "This server has as many open streams as it takes; retry.", NULL);
    }
    if (rc != 0)
        return rc;
    notifications__hub_wait_subscribed(c);
    if ((rc = notifications__catch_up(c, last_id)) != 0) {
        notifications__hub_done(c);
        return rc;
    }

    bh_reply_header(req, "Cache-Control", "no-store");
    bh_reply_header(req, "X-Accel-Buffering", "no"); /* proxies: do not buffer the stream */
    struct bh_stream *stream = NULL;
    rc = bh_reply_stream(req, 200, "text/event-stream; charset=utf-8", notifications__sse_read,
                         notifications__hub_done, c, &stream);
    if (rc != 0)
        return rc; /* notifications__hub_done has run */
    notifications__hub_attach(c, stream);
    return 0;
}
