/* The inbox's page cursor: an opaque token for the position (created_at,
 * id) of the last notification of a page. Decoding accepts only what
 * encoding produces, so a forged cursor is a 422, never an SQL error. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/arena.h"

/* "YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z", the shape notifications.rfc3339() gives. */
static bool rfc3339_utc(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; shape[i]; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return false;
    }
    if (s[i] == '.') {
        size_t digits = 0;
        for (i++; isdigit((unsigned char)s[i]); i++)
            digits++;
        if (digits < 1 || digits > 6)
            return false;
    }
    return s[i] == 'Z' && s[i + 1] == '\0';
}

char *notifications__cursor_encode(struct bh_arena *a, const char *created_at, const char *id)
{
    char raw[sizeof(struct notifications__cursor)];
    int n = snprintf(raw, sizeof raw, "%s|%s", created_at, id);
    if (n < 0 || (size_t)n >= sizeof raw)
        return NULL;
    size_t out_len = sodium_base64_encoded_len((size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = bh_arena_alloc(a, out_len);
    if (!out)
        return NULL;
    return sodium_bin2base64(out, out_len, (const unsigned char *)raw, (size_t)n,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool notifications__cursor_decode(const char *text, struct notifications__cursor *out)
{
    unsigned char raw[sizeof(struct notifications__cursor)];
    size_t n = 0;
    if (!text || strlen(text) > 2 * sizeof raw)
        return false;
    if (sodium_base642bin(raw, sizeof raw - 1, text, strlen(text), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    raw[n] = '\0';
    const char *sep = memchr(raw, '|', n);
    if (!sep || memchr(raw, '\0', n))
        return false;
    size_t ts_len = (size_t)(sep - (const char *)raw);
    if (ts_len >= sizeof out->created_at)
        return false;
    memcpy(out->created_at, raw, ts_len);
    out->created_at[ts_len] = '\0';
    bh_uuid id;
    if (!rfc3339_utc(out->created_at) || !bh_uuid_parse(sep + 1, &id))
        return false;
    memcpy(out->id, id.str, sizeof out->id);
    return true;
}
