/* UUIDs travel through Bulkhead in their canonical text form (36 lower-case
 * characters): that is what Postgres takes as a parameter, what JSON carries
 * and what logs print, so no conversion happens on the hot path. */
#ifndef BH_PLATFORM_UUID_H
#define BH_PLATFORM_UUID_H

#include <stdbool.h>
#include <stddef.h>

/* The size of a UUID's text with its NUL: for a buffer that holds one. */
enum { BH_UUID_TEXT_SIZE = 37 };

typedef struct bh_uuid {
    char str[BH_UUID_TEXT_SIZE]; /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL, lower-case */
} bh_uuid;

/* Parse text (any case) into out; false when s is not a UUID. */
bool bh_uuid_parse(const char *s, bh_uuid *out);
/* A new random (version 4) UUID. */
bh_uuid bh_uuid_v4(void);
/* A new time-ordered (version 7) UUID: good for primary keys. */
bh_uuid bh_uuid_v7(void);
/* n random bytes from the same source as libsodium's randombytes_buf(),
 * drawn from the kernel in batches per thread (cheap on the request path). */
void bh_random_bytes(void *out, size_t n);
/* True for the all-zero "no value" UUID (a zeroed struct). */
static inline bool bh_uuid_is_nil(const bh_uuid *u)
{
    return u->str[0] == '\0';
}

#endif
