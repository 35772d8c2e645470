/* UUID text handling and generation (random bytes from libsodium). It must
 * never draw from a guessable source: ids appear in URLs and tokens. */
#include "platform/uuid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Each thread draws from the kernel (libsodium's randombytes_buf: one
 * getrandom call) a batch at a time and hands the bytes out once each, in
 * order: the same source, far fewer system calls on the request path. */
enum { RANDOM_BATCH = 512 };
static _Thread_local unsigned char batch[RANDOM_BATCH];
static _Thread_local size_t batch_left;

void bh_random_bytes(void *out, size_t n)
{
    unsigned char *w = out;
    if (n > RANDOM_BATCH / 4) {
        randombytes_buf(out, n);
        return;
    }
    while (n > 0) {
        if (batch_left == 0) {
            randombytes_buf(batch, sizeof batch);
            batch_left = sizeof batch;
        }
        size_t take = n < batch_left ? n : batch_left;
        unsigned char *from = batch + (sizeof batch - batch_left);
        memcpy(w, from, take);
        sodium_memzero(from, take); /* handed out once: not kept */
        batch_left -= take;
        w += take;
        n -= take;
    }
}

bool bh_uuid_parse(const char *s, bh_uuid *out)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!isxdigit((unsigned char)c)) {
            return false;
        }
        out->str[i] = (char)tolower((unsigned char)c);
    }
    out->str[36] = '\0';
    return true;
}

static bh_uuid format(const uint8_t b[16])
{
    bh_uuid u;
    snprintf(u.str, sizeof u.str,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return u;
}

bh_uuid bh_uuid_v4(void)
{
    uint8_t b[16];
    bh_random_bytes(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    return format(b);
}

bh_uuid bh_uuid_v7(void)
{
    uint8_t b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    bh_random_bytes(b, sizeof b);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    return format(b);
}
