/* Keyset cursors and RFC 3339 date-times (platform/cursor.h): pure text
 * handling, no I/O. A cursor that did not come from bh_cursor_encode()
 * never decodes, so forged input never reaches SQL. */
#include "platform/cursor.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "platform/uuid.h"

/* n decimal digits at s, as a number; -1 when they are not all digits. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

enum { MAX_OFFSET_MIN = 14 * 60 };

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't' and 'z' are allowed by
 * RFC 3339 too. Leap seconds are refused: Postgres would refuse them; so are
 * offsets beyond 14:00 (see below). */
bool bh_rfc3339_valid(const char *s)
{
    if (!s || strlen(s) < 20)
        return false;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), minute = digits(s + 14, 2), second = digits(s + 17, 2);
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        size_t n = strspn(p + 1, "0123456789");
        if (n == 0 || n > 9)
            return false;
        p += 1 + n;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        /* RFC 3339's grammar allows +23:59; Postgres refuses offsets of 16
         * hours or more, and no zone on Earth is beyond UTC-12 or UTC+14:
         * accept those, so no offset ever reaches SQL to be refused there. */
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        return oh >= 0 && om >= 0 && om <= 59 && oh * 60 + om <= MAX_OFFSET_MIN;
    }
    return false;
}

char *bh_cursor_encode(struct bh_arena *a, const char *created_at, const char *id)
{
    char raw[sizeof(struct bh_cursor)];
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

bool bh_cursor_decode(const char *text, struct bh_cursor *out)
{
    unsigned char raw[sizeof(struct bh_cursor)];
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
    if (!bh_rfc3339_valid(out->created_at) || !bh_uuid_parse(sep + 1, &id))
        return false;
    memcpy(out->id, id.str, sizeof out->id);
    return true;
}
