/* The tasks module's pure rules: statuses and their transitions, entity
 * tags, search patterns (cursors and date-times are platform/cursor.h). No I/O and no state
 * here, so the unit tests cover every branch; never call Postgres or Redis. */
#include <ctype.h>
#include <inttypes.h>
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

/* "YYYY-MM-DD HH:MM:SS[.frac][ BC]" (Postgres's ISO text of a timestamp,
 * fraction without trailing zeros, four or more year digits) as RFC 3339
 * UTC: "YYYY-MM-DDTHH:MM:SS[.frac]Z", 1 BC being year 0000. */
bool tasks__rfc3339_from_pg(const char *pg, char *out, size_t size)
{
    size_t y = 0, n = strlen(pg);
    while (isdigit((unsigned char)pg[y]))
        y++;
    if (y < 4 || y > 6)
        return false;
    const char *rest = pg + y; /* "-MM-DD HH:MM:SS[.frac][ BC]" */
    static const char shape[] = "-dd-dd dd:dd:dd";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)rest[i]) : rest[i] != shape[i])
            return false;
    const char *frac = rest + sizeof shape - 1, *end = pg + n;
    bool bc = n >= 3 && strcmp(end - 3, " BC") == 0;
    if (bc)
        end -= 3;
    size_t nfrac = (size_t)(end - frac);
    if (nfrac > 0) {
        if (nfrac < 2 || nfrac > 7 || frac[0] != '.')
            return false;
        for (size_t i = 1; i < nfrac; i++)
            if (!isdigit((unsigned char)frac[i]))
                return false;
    }
    long year = strtol(pg, NULL, 10);
    int w;
    if (bc)
        w = snprintf(out, size, "%04ld%.*sT%.8s%.*sZ", 1 - year, 6, rest, rest + 7, (int)nfrac,
                     frac);
    else
        w = snprintf(out, size, "%.*s%.*sT%.8s%.*sZ", (int)y, pg, 6, rest, rest + 7, (int)nfrac,
                     frac);
    return w > 0 && (size_t)w < size;
}
