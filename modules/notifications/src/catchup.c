/* The Last-Event-ID replay: what a reconnecting client missed, read from the
 * inbox (repo.c) and written into its buffer before the live frames. It
 * runs only after the user's channel is confirmed, so nothing falls between
 * the replay and the live feed; a live frame that the replay also holds is
 * written once. */
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "stream.h"

/* Notifications replayed on a resume (a macro: the replay's note quotes it). */
#define CATCHUP_MAX    100
#define TEXT_OF(x)     #x
#define NUMBER_TEXT(x) TEXT_OF(x)
/* How long a disconnected EventSource waits before it resumes, in ms. */
#define RETRY_MS 2000

/* Writes one stored notification as a frame (c->lock held). */
static void write_row(struct notifications__client *c, const struct notifications__row *row)
{
    json_t *obj = notifications__row_json(row);
    char *data = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    size_t len = 0;
    char *frame = data ? notifications__sse_frame(row->id.str, data, strlen(data), &len) : NULL;
    if (frame)
        notifications__sse_append_locked(c, frame, len);
    else
        c->ended = true; /* out of memory: the client resumes after reconnecting */
    free(frame);
    free(data);
    json_decref(obj);
}

int notifications__catch_up(struct notifications__client *c, const char *last_id)
{
    struct notifications__rows rows = {0};
    bool truncated = false;
    if (last_id) {
        int rc = notifications__repo_since(c->user_id.str, last_id, CATCHUP_MAX + 1, &rows);
        if (rc != 0)
            return rc;
        truncated = rows.n > CATCHUP_MAX;
    }
    size_t n = truncated ? CATCHUP_MAX : rows.n;
    pthread_mutex_lock(&c->lock);
    static const char hello[] = "retry: " NUMBER_TEXT(RETRY_MS) "\n: connected\n\n";
    notifications__sse_append_locked(c, hello, sizeof hello - 1);
    if (truncated) {
        static const char note[] = ": replay holds the newest " NUMBER_TEXT(
            CATCHUP_MAX) " only; GET /v1/me/notifications has the rest\n\n";
        notifications__sse_append_locked(c, note, sizeof note - 1);
    }
    c->caught = n ? calloc(n, sizeof *c->caught) : NULL;
    if (n && !c->caught)
        c->ended = true;
    for (size_t i = n; c->caught && i-- > 0;) { /* the rows are newest first */
        write_row(c, &rows.v[i]);
        c->caught[c->n_caught++] = rows.v[i].id;
    }
    notifications__sse_ready_locked(c);
    pthread_mutex_unlock(&c->lock);
    notifications__rows_release(&rows);
    return 0;
}
