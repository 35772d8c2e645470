/* Strict reading of JSON request bodies: every field a handler accepts is
 * declared, unknown fields are rejected, types and lengths are checked, and
 * all problems are reported together as field errors on the request.
 *
 *     const char *title = NULL; int64_t n = 0;
 *     const struct bh_json_field fields[] = {
 *         BH_JSON_STRING("title", &title, 1, 200, true),
 *         BH_JSON_INT("n", &n, 0, 100, false),
 *         {0}};
 *     if (bh_json_read(req, bh_req_json(req), fields) != 0)
 *         return bh_reply_field_errors(req);
 */
#ifndef BH_PLATFORM_JSON_H
#define BH_PLATFORM_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform/http.h"

enum bh_json_type {
    BH_JSON_T_STRING = 1,
    BH_JSON_T_INT,
    BH_JSON_T_BOOL,
    BH_JSON_T_ANY,
    BH_JSON_T_NULLABLE_STRING,
    /* A string that is one line of text: names and titles that end up in
     * email headers, logs and other people's screens. It refuses every
     * control character (C0 with CR, LF and TAB, DEL, C1) and the Unicode
     * line and paragraph separators, with a field error naming the field. */
    BH_JSON_T_LINE
};

struct bh_json_field {
    const char *name;
    enum bh_json_type type;
    void *out;     /* const char **, int64_t *, bool *, json_t ** (borrowed) */
    long long min; /* strings: min length in characters; ints: min value */
    long long max;
    bool required;
    bool *present; /* optional: set true when the field was in the body */
};

#define BH_JSON_STRING(n, o, lo, hi, req)                                                          \
    {                                                                                              \
        (n), BH_JSON_T_STRING, (o), (lo), (hi), (req), NULL                                        \
    }
/* A string that may also be JSON null (out stays NULL); *present tells it was sent. */
#define BH_JSON_NSTRING(n, o, lo, hi, pres)                                                        \
    {                                                                                              \
        (n), BH_JSON_T_NULLABLE_STRING, (o), (lo), (hi), false, (pres)                             \
    }
/* One line of text (BH_JSON_T_LINE): a string without control characters. */
#define BH_JSON_LINE(n, o, lo, hi, req)                                                            \
    {                                                                                              \
        (n), BH_JSON_T_LINE, (o), (lo), (hi), (req), NULL                                          \
    }
#define BH_JSON_INT(n, o, lo, hi, req)                                                             \
    {                                                                                              \
        (n), BH_JSON_T_INT, (o), (lo), (hi), (req), NULL                                           \
    }
#define BH_JSON_BOOL(n, o, req)                                                                    \
    {                                                                                              \
        (n), BH_JSON_T_BOOL, (o), 0, 0, (req), NULL                                                \
    }
#define BH_JSON_ANY(n, o, req)                                                                     \
    {                                                                                              \
        (n), BH_JSON_T_ANY, (o), 0, 0, (req), NULL                                                 \
    }

/* Reads body (a JSON object, or NULL when absent: then every required field
 * is reported missing) into the outputs. Strings are borrowed from body,
 * which lives as long as the request. Returns 0, or BH_EINVAL after adding
 * field errors to req. Lengths count Unicode characters, not bytes. */
int bh_json_read(struct bh_req *req, json_t *body, const struct bh_json_field *fields);

/* Number of UTF-8 characters in s (s is valid UTF-8: jansson checked it). */
size_t bh_utf8_len(const char *s);

/* Maximum nesting of arrays and objects a request body may have. */
#define BH_JSON_MAX_DEPTH 32
/* True when body (len bytes) nests deeper than max_depth (strings are skipped). */
bool bh_json_too_deep(const char *body, size_t len, int max_depth);

#endif
