/* Lists, one way: every list route reads its page with bh_page_args() and
 * answers with bh_reply_page(), so that all of them take the same `limit`
 * (1 to BH_PAGE_MAX, default BH_PAGE_DEFAULT; anything else is a field
 * error), take back the opaque `cursor` their last page gave, answer
 * {"data": [...], "next_cursor": "..." | null}, and send
 * `Link: <path?filters&limit=N&cursor=C>; rel="next"` when there is more.
 *
 * A cursor is opaque to clients: base64url of the module's position key
 * (for keyset lists, bh_cursor's "<created_at>|<id>"; otherwise any short
 * printable text, such as an id or a number). A module reads the key back
 * and refuses one it would not have written with bh_page_bad_cursor(). */
#ifndef BH_PLATFORM_PAGE_H
#define BH_PLATFORM_PAGE_H

#include <jansson.h>

#include "platform/arena.h"

struct bh_req;

enum { BH_PAGE_DEFAULT = 20, BH_PAGE_MAX = 100, BH_PAGE_KEY_MAX = 96 };

struct bh_page {
    int limit;          /* rows to answer */
    const char *cursor; /* the cursor as sent (opaque), NULL on the first page */
    const char *key;    /* the position key it carries (in the request's arena), or NULL */
};

/* Reads ?limit= and ?cursor= into out; 0, or BH_EINVAL with the field errors
 * recorded on req (answer them with bh_reply_field_errors()). */
int bh_page_args(struct bh_req *req, struct bh_page *out);
/* Records "cursor: is not a cursor this API returned"; returns BH_EINVAL. */
int bh_page_bad_cursor(struct bh_req *req);
/* The opaque cursor for a position key, in the arena; NULL when the key is
 * empty, longer than BH_PAGE_KEY_MAX or not printable ASCII, or on OOM. */
char *bh_page_cursor(struct bh_arena *a, const char *key);
/* The position key a cursor carries, in the arena; NULL for anything
 * bh_page_cursor() would not have produced (or on OOM). */
const char *bh_page_key(struct bh_arena *a, const char *cursor);
/* Answers 200 {"data": data, "next_cursor": next_cursor or null} and, with
 * a next cursor, the Link header built from the request's path, the query
 * arguments named in keep (NULL-terminated, may be NULL) as the request sent
 * them, the page's limit and the cursor. Takes data (even on failure). */
int bh_reply_page(struct bh_req *req, const struct bh_page *page, json_t *data,
                  const char *next_cursor, const char *const *keep);

/* The two halves of bh_reply_page(), for a module that keeps rendered pages
 * (a cache) and answers them again without parsing them:
 * bh_page_render() is the body bh_reply_page() sends, in the arena (len set;
 * NULL on OOM; takes data), and bh_reply_page_body() answers such a body,
 * which must live as long as the request (the arena: it is not copied),
 * with the Link header built from this request as bh_reply_page() does. */
char *bh_page_render(struct bh_arena *a, json_t *data, const char *next_cursor, size_t *len);
int bh_reply_page_body(struct bh_req *req, const struct bh_page *page, const char *body, size_t len,
                       const char *next_cursor, const char *const *keep);

#endif
