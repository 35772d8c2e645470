/* Fuzzing the notification templates (modules/notifications/src/
 * templates.c): the input is a template (first line) and the variables as
 * JSON (the rest), as events carry user text. The engine must fill any
 * template from any variables without a crash or a leak; in HTML it must
 * escape every value, so a template without markup yields none whatever the
 * values hold; and every notification type renders from any variables. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *text)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n---\n%s\n---\n", what, text ? text : "");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = strchr(text, '\n');
    const char *json = "";
    if (nl) {
        *nl = '\0';
        json = nl + 1;
    }
    json_t *vars = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(vars)) {
        json_decref(vars);
        vars = json_pack("{s:s, s:s, s:i}", "title", json, "name", text, "n", 3);
    }
    bool markup = strpbrk(text, "<>&\"'") != NULL;
    for (int html = 0; html <= 1; html++) {
        char *out = notifications__expand(text, vars, html);
        if (out && html && !markup)
            check(strpbrk(out, "<>\"'") == NULL, "HTML values are escaped", out);
        free(out);
    }
    for (int t = 0; t < NOTIF_N_TYPES; t++) {
        struct notifications__rendered r;
        memset(&r, 0, sizeof r);
        if (notifications__render((enum notifications__type)t, vars, &r) == 0)
            check(r.title && r.body && r.email_text && r.email_html, "every text is rendered",
                  NULL);
        notifications__rendered_release(&r);
    }
    json_decref(vars);
    free(text);
    return 0;
}
