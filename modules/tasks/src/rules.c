/* The tasks module's pure rules: statuses and their transitions, date-time
 * and cursor formats, entity tags, search patterns. No I/O and no state
 * here, so the unit tests cover every branch; never call Postgres or Redis. */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/uuid.h"

static bool one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

bool tasks__status_valid(const char *s)
{
    static const char *const statuses[] = {"todo", "in_progress", "done", NULL};
    return s && one_of(s, statuses);
}

bool tasks__priority_valid(const char *s)
{
    static const char *const priorities[] = {"low", "normal", "high", "urgent", NULL};
    return s && one_of(s, priorities);
}

bool tasks__transition_allowed(const char *from, const char *to)
{
    static const struct {
        const char *from, *to;
    } allowed[] = {
        {"todo", "in_progress"}, {"in_progress", "done"}, {"done", "todo"}, /* reopen */
    };
    if (strcmp(from, to) == 0)
        return true;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcmp(allowed[i].from, from) == 0 && strcmp(allowed[i].to, to) == 0)
            return true;
    return false;
}

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

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't' and 'z' are allowed by
 * RFC 3339 too. Leap seconds are refused: Postgres would refuse them. */
bool tasks__rfc3339_valid(const char *s)
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
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
    }
    return false;
}

char *tasks__cursor_encode(struct bh_arena *a, const char *created_at, const char *id)
{
    char raw[sizeof(struct tasks__cursor)];
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

bool tasks__cursor_decode(const char *text, struct tasks__cursor *out)
{
    unsigned char raw[sizeof(struct tasks__cursor)];
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
    if (!tasks__rfc3339_valid(out->created_at) || !bh_uuid_parse(sep + 1, &id))
        return false;
    memcpy(out->id, id.str, sizeof out->id);
    return true;
}

void tasks__etag_format(char *buf, size_t size, int64_t version)
{
    snprintf(buf, size, "\"v%" PRId64 "\"", version);
}

/* Calls fn for each entity tag of a list ("a", W/"b"); returns false when
 * the list is malformed. */
static bool each_etag(const char *h, bool (*fn)(const char *tag, size_t len, bool weak, void *arg),
                      void *arg)
{
    const char *p = h;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        bool weak = false;
        if (p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (*p != '"')
            return false;
        const char *end = strchr(p + 1, '"');
        if (!end)
            return false;
        if (fn && fn(p + 1, (size_t)(end - p - 1), weak, arg))
            return true;
        p = end + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

struct etag_match {
    char want[32]; /* v<version>, unquoted */
    bool weak_ok, matched;
};

static bool etag_equal(const char *tag, size_t len, bool weak, void *arg)
{
    struct etag_match *m = arg;
    if (weak && !m->weak_ok)
        return false;
    if (len == strlen(m->want) && memcmp(tag, m->want, len) == 0)
        m->matched = true;
    return m->matched;
}

bool tasks__etag_matches(const char *header, int64_t version, bool weak)
{
    const char *p = header;
    while (*p == ' ')
        p++;
    if (p[0] == '*' && p[1] == '\0')
        return true;
    struct etag_match m = {.weak_ok = weak};
    snprintf(m.want, sizeof m.want, "v%" PRId64, version);
    each_etag(header, etag_equal, &m);
    return m.matched;
}

char *tasks__like_pattern(struct bh_arena *a, const char *q)
{
    size_t n = strlen(q);
    char *out = bh_arena_alloc(a, 2 * n + 3);
    if (!out)
        return NULL;
    char *w = out;
    *w++ = '%';
    for (const char *s = q; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *w++ = '\\';
        *w++ = *s;
    }
    *w++ = '%';
    *w = '\0';
    return out;
}

char *tasks__url_encode(struct bh_arena *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = bh_arena_alloc(a, 3 * strlen(s) + 1);
    if (!out)
        return NULL;
    char *w = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return out;
}
