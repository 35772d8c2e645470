/* The one way lists page (see page.h). Must never let a cursor reach SQL
 * unchecked: it only yields a printable key the module parses again. */
#include "platform/page.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/http.h"

static bool key_ok(const char *key, size_t len)
{
    if (len == 0 || len > BH_PAGE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

char *bh_page_cursor(struct bh_arena *a, const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (!key_ok(key, len))
        return NULL;
    size_t out_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = bh_arena_alloc(a, out_len);
    if (!out)
        return NULL;
    return sodium_bin2base64(out, out_len, (const unsigned char *)key, len,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int bh_page_bad_cursor(struct bh_req *req)
{
    bh_req_field_error(req, "cursor", "is not a cursor this API returned");
    return BH_EINVAL;
}

const char *bh_page_key(struct bh_arena *a, const char *cursor)
{
    unsigned char raw[BH_PAGE_KEY_MAX + 1];
    size_t n = 0, len = cursor ? strlen(cursor) : 0;
    if (len == 0 || len > 2 * BH_PAGE_KEY_MAX ||
        sodium_base642bin(raw, sizeof raw - 1, cursor, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        !key_ok((const char *)raw, n))
        return NULL;
    char *key = bh_arena_alloc(a, n + 1);
    if (!key)
        return NULL;
    memcpy(key, raw, n);
    key[n] = '\0';
    return key;
}

int bh_page_args(struct bh_req *req, struct bh_page *out)
{
    out->limit = (int)bh_req_query_long(req, "limit", BH_PAGE_DEFAULT, 1, BH_PAGE_MAX);
    out->cursor = bh_req_query(req, "cursor");
    out->key = NULL;
    if (out->cursor && !(out->key = bh_page_key(bh_req_arena(req), out->cursor)))
        bh_page_bad_cursor(req);
    return bh_req_has_field_errors(req) ? BH_EINVAL : 0;
}

/* value percent-encoded (RFC 3986 unreserved kept), in the arena. */
static char *url_encode(struct bh_arena *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = bh_arena_alloc(a, 3 * strlen(s) + 1);
    if (!out)
        return NULL;
    char *w = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
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

static const char *next_link(struct bh_req *req, const struct bh_page *page,
                             const char *next_cursor, const char *const *keep)
{
    struct bh_arena *a = bh_req_arena(req);
    char *query = bh_arena_strdup(a, "");
    for (size_t i = 0; keep && keep[i] && query; i++) {
        const char *v = bh_req_query(req, keep[i]);
        const char *enc = v ? url_encode(a, v) : NULL;
        if (v)
            query = enc ? bh_arena_printf(a, "%s%s=%s&", query, keep[i], enc) : NULL;
    }
    if (!query)
        return NULL;
    return bh_arena_printf(a, "<%s?%slimit=%d&cursor=%s>; rel=\"next\"", bh_req_path(req), query,
                           page->limit, next_cursor);
}

char *bh_page_render(struct bh_arena *a, json_t *data, const char *next_cursor, size_t *len)
{
    *len = 0;
    if (!data)
        return NULL;
    json_t *body = json_pack("{s:o, s:o}", "data", data, "next_cursor",
                             next_cursor ? json_string(next_cursor) : json_null());
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!text)
        return NULL;
    *len = strlen(text);
    char *out = bh_arena_strndup(a, text, *len);
    free(text);
    return out;
}

int bh_reply_page_body(struct bh_req *req, const struct bh_page *page, const char *body, size_t len,
                       const char *next_cursor, const char *const *keep)
{
    if (!body)
        return BH_ENOMEM;
    if (next_cursor) {
        const char *link = next_link(req, page, next_cursor, keep);
        if (!link)
            return BH_ENOMEM;
        bh_reply_header(req, "Link", link);
    }
    return bh_reply_bytes(req, 200, "application/json", body, len);
}

int bh_reply_page(struct bh_req *req, const struct bh_page *page, json_t *data,
                  const char *next_cursor, const char *const *keep)
{
    size_t len = 0;
    const char *body = bh_page_render(bh_req_arena(req), data, next_cursor, &len);
    return bh_reply_page_body(req, page, body, len, next_cursor, keep);
}
