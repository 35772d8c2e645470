/* Fuzzing the parsers that read untrusted text before any handler runs:
 * the JSON depth guard (then jansson itself, as the edge calls it), keyset
 * cursors, RFC 3339 date-times and UUIDs. Each must accept or refuse any
 * input without a crash, an out-of-bounds read or a leak, and whatever it
 * accepts must be well-formed.
 *
 * Two ways to run it: as a libFuzzer target (build with clang
 * -fsanitize=fuzzer,address -DBH_LIBFUZZER), or, in the test suite, with its
 * own driver below, which feeds a fixed number of seeded random and mutated
 * inputs so the run is bounded and repeatable. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/cursor.h"
#include "platform/json.h"
#include "platform/uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers take NUL-terminated text, as the HTTP edge hands them. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* The edge's order: depth guard first, then jansson. */
    if (!bh_json_too_deep(text, size, BH_JSON_MAX_DEPTH)) {
        json_error_t err;
        json_t *v = json_loadb(text, size, JSON_REJECT_DUPLICATES, &err);
        json_decref(v);
    }

    struct bh_cursor c;
    if (bh_cursor_decode(text, &c)) {
        bh_uuid u;
        check(bh_rfc3339_valid(c.created_at), "a decoded cursor has a valid time");
        check(bh_uuid_parse(c.id, &u), "a decoded cursor has a valid id");
    }
    bh_rfc3339_valid(text);
    bh_uuid u;
    if (bh_uuid_parse(text, &u))
        check(strlen(u.str) == 36, "a parsed UUID is 36 characters");
    free(text);
    return 0;
}

#ifndef BH_LIBFUZZER
/* xorshift64*: a repeatable stream of pseudo-random numbers. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

int main(void)
{
    static const char *const seeds[] = {
        "{\"title\": \"a\", \"tags\": [1, 2, {\"x\": null}]}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"a\":\"\\\"[[[[\\\\\"}",
        "MjAyNi0wMS0wMVQxMjowMDowMC4xMjM0NTZafDAxOTBhMGIxLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMQ",
        "2024-02-29T23:59:59.123456+02:00",
        "0190A0B1-0000-7000-8000-000000000001",
        "",
    };
    enum { ROUNDS = 250000, MAX_LEN = 256 };
    uint8_t buf[MAX_LEN];
    uint64_t state = 0x9E3779B97F4A7C15ULL;

    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
    /* Half the rounds mutate a seed (flip, insert, truncate), half are noise
     * drawn from the characters these formats are made of. */
    static const char alphabet[] = "{}[]\",:\\-+.0123456789TZtzeE nulltrfa_-AbcXyz";
    for (int round = 0; round < ROUNDS; round++) {
        size_t len;
        if (round % 2 == 0) {
            const char *seed = seeds[next_random(&state) % (sizeof seeds / sizeof seeds[0])];
            len = strlen(seed);
            memcpy(buf, seed, len);
            int edits = 1 + (int)(next_random(&state) % 4);
            for (int e = 0; e < edits && len > 0; e++) {
                size_t at = next_random(&state) % len;
                switch (next_random(&state) % 3) {
                case 0: buf[at] = (uint8_t)next_random(&state); break;
                case 1: len = at; break;
                default:
                    if (len < MAX_LEN) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = (uint8_t)alphabet[next_random(&state) % (sizeof alphabet - 1)];
                        len++;
                    }
                }
            }
        } else {
            len = next_random(&state) % MAX_LEN;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)alphabet[next_random(&state) % (sizeof alphabet - 1)];
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("ok - %d fuzzed inputs: no crash, every accepted value well-formed\n", ROUNDS);
    return 0;
}
#endif
