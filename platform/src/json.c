/* Strict JSON body reading: declared fields only, types and bounds checked,
 * every problem reported as a field error. Never trusts a length or a depth. */
#include "platform/json.h"

#include <string.h>

#include "platform/err.h"

size_t bh_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* True when s (valid UTF-8) holds a control character or a line or
 * paragraph separator: what BH_JSON_T_LINE refuses. */
static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return true; /* C0 (CR, LF, TAB…) and DEL */
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return true; /* C1: U+0080 to U+009F */
        if (*p == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
            return true; /* U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR */
    }
    return false;
}

bool bh_json_too_deep(const char *body, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return true;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return false;
}

static const struct bh_json_field *find_field(const struct bh_json_field *fields, const char *key)
{
    for (const struct bh_json_field *f = fields; f->name; f++)
        if (strcmp(f->name, key) == 0)
            return f;
    return NULL;
}

static void read_string(struct bh_req *req, const struct bh_json_field *f, json_t *v)
{
    if (f->type == BH_JSON_T_NULLABLE_STRING && json_is_null(v))
        return;
    if (!json_is_string(v)) {
        bh_req_field_error(req, f->name, "must be a string");
        return;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        bh_req_field_error(req, f->name, "must not contain NUL characters");
        return;
    }
    if (f->type == BH_JSON_T_LINE && has_control(s)) {
        bh_req_field_error(req, f->name, "must be one line without control characters");
        return;
    }
    size_t n = bh_utf8_len(s);
    if ((long long)n < f->min || (long long)n > f->max) {
        if (f->min == f->max)
            bh_req_field_error(req, f->name, "must be %lld characters", f->min);
        else
            bh_req_field_error(req, f->name, "must be %lld to %lld characters", f->min, f->max);
        return;
    }
    *(const char **)f->out = s;
}

int bh_json_read(struct bh_req *req, json_t *body, const struct bh_json_field *fields)
{
    if (body && !json_is_object(body)) {
        bh_req_field_error(req, "", "the body must be a JSON object");
        return BH_EINVAL;
    }
    if (body) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (!find_field(fields, key))
                bh_req_field_error(req, key, "is not a known field");
        }
    }
    for (const struct bh_json_field *f = fields; f->name; f++) {
        json_t *v = body ? json_object_get(body, f->name) : NULL;
        if (f->present)
            *f->present = v != NULL;
        if (!v) {
            if (f->required)
                bh_req_field_error(req, f->name, "is required");
            continue;
        }
        switch (f->type) {
        case BH_JSON_T_STRING:
        case BH_JSON_T_LINE:
        case BH_JSON_T_NULLABLE_STRING: read_string(req, f, v); break;
        case BH_JSON_T_INT:
            if (!json_is_integer(v)) {
                bh_req_field_error(req, f->name, "must be an integer");
            } else if (json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
                bh_req_field_error(req, f->name, "must be between %lld and %lld", f->min, f->max);
            } else {
                *(int64_t *)f->out = (int64_t)json_integer_value(v);
            }
            break;
        case BH_JSON_T_BOOL:
            if (!json_is_boolean(v))
                bh_req_field_error(req, f->name, "must be true or false");
            else
                *(bool *)f->out = json_is_true(v);
            break;
        case BH_JSON_T_ANY: *(json_t **)f->out = v; break;
        }
    }
    return bh_req_has_field_errors(req) ? BH_EINVAL : 0;
}
