/* A growable string for building emails and texts: appends never fail
 * loudly, an out-of-memory is remembered and reported once at the end. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void notifications__buf_add(struct notifications__buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            free(b->p);
            b->p = NULL;
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void notifications__buf_str(struct notifications__buf *b, const char *s)
{
    notifications__buf_add(b, s, strlen(s));
}

char *notifications__buf_finish(struct notifications__buf *b, size_t *len)
{
    if (!b->oom && !b->p)
        notifications__buf_add(b, "", 0);
    if (len)
        *len = b->oom ? 0 : b->len;
    return b->oom ? NULL : b->p;
}
