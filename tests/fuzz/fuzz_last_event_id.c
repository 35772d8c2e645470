/* Fuzzing the resume point of the notification stream: the Last-Event-ID
 * header (or the last_event_id query parameter) is the one value a
 * reconnecting EventSource sends that reaches the database. The stream
 * accepts it only when bh_uuid_parse does (modules/notifications/src/
 * http.c) and replays from the canonical text, so for any bytes: either it
 * is refused (422), or it is a UUID whose canonical form is 36 lower-case
 * hex digits and hyphens, equal to the input but for letter case, and
 * parses again to itself. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (size > 1024)
        return 0;
    char *value = malloc(size + 1);
    if (!value)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    bh_uuid id, again;
    if (value[0] && bh_uuid_parse(value, &id)) {
        check(strlen(id.str) == 36, "a resume point is 36 characters");
        for (int i = 0; i < 36; i++) {
            char c = id.str[i];
            check(i == 8 || i == 13 || i == 18 || i == 23
                      ? c == '-'
                      : isxdigit((unsigned char)c) && !isupper((unsigned char)c),
                  "a resume point is lower-case hex with hyphens in place");
            check(tolower((unsigned char)value[i]) == c, "the canonical text is the input's");
        }
        check(value[36] == '\0', "nothing follows the UUID");
        check(bh_uuid_parse(id.str, &again) && strcmp(again.str, id.str) == 0,
              "the canonical text parses to itself");
    }
    free(value);
    return 0;
}
