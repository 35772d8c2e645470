/* Keyset pagination: a page ends at the (created_at, id) of its last row,
 * and the next page starts after it. The position travels as an opaque
 * cursor (base64url of "<created_at>|<id>"). Decoding accepts only what
 * encoding produces, so a forged cursor is a validation error, never an SQL
 * error. Also the RFC 3339 check that the APIs use for date-times. */
#ifndef BH_PLATFORM_CURSOR_H
#define BH_PLATFORM_CURSOR_H

#include <stdbool.h>

#include "platform/arena.h"

struct bh_cursor {
    char created_at[40]; /* RFC 3339 */
    char id[37];         /* a UUID, lower-case */
};

/* The cursor text for a position, in the arena; NULL when the position does
 * not fit or on OOM. */
char *bh_cursor_encode(struct bh_arena *a, const char *created_at, const char *id);
/* Fills out from cursor text; false for anything bh_cursor_encode() would
 * not have produced from a valid RFC 3339 time and a UUID. */
bool bh_cursor_decode(const char *text, struct bh_cursor *out);

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), a real calendar instant
 * ('t' and 'z' allowed, as RFC 3339 does; leap seconds refused, as
 * Postgres refuses them). */
bool bh_rfc3339_valid(const char *s);

#endif
