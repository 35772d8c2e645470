/* Fuzzing the parsers that read untrusted text before any handler runs:
 * the JSON depth guard (then jansson itself, as the edge calls it), keyset
 * cursors, RFC 3339 date-times and UUIDs. Each must accept or refuse any
 * input without a crash, an out-of-bounds read or a leak, and whatever it
 * accepts must be well-formed.
 *
 * Run by libFuzzer (`make fuzz`) or, in the test suite, by the bounded
 * driver (driver.c) over tests/fuzz/corpus/parsers/. */
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
