/* The texts of every notification, as templates with {{placeholders}}, and
 * the small engine that fills them. Values come from events (task titles,
 * names: user input), so the HTML email escapes every value it inserts;
 * only the template's own markup is trusted. Never build HTML by hand
 * outside this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

struct template
{
    const char *title; /* in-app title, email subject */
    const char *body;  /* in-app body, the core of the plain-text email */
    const char *html;  /* the core of the HTML email */
};

static const struct template templates[NOTIF_N_TYPES] = {
    [NOTIF_USER_SIGNED_UP] =
        {
            "Welcome to Bulkhead, {{name}}",
            "Your account {{email}} is ready, with a personal organization of your own. "
            "Create a project, add tasks and invite your team.",
            "<p>Your account <strong>{{email}}</strong> is ready, with a personal organization of "
            "your own.</p><p>Create a project, add tasks and invite your team.</p>",
        },
    /* Organization names are chosen by whoever creates the organization:
     * never in a subject, and quoted in the text, so they cannot pose as
     * the platform's own words. */
    [NOTIF_MEMBER_ADDED] =
        {
            "You joined an organization",
            "You are now a member of the organization \"{{org_name}}\" as {{role}} "
            "(invited by {{actor_name}}).",
            "<p>You are now a member of the organization &ldquo;{{org_name}}&rdquo; as {{role}} "
            "(invited by {{actor_name}}).</p>",
        },
    [NOTIF_MEMBER_INVITED] =
        {
            "You have an invitation to an organization",
            "{{actor_name}} invited you to join the organization \"{{org_name}}\" as {{role}}. "
            "Nothing changes unless you accept: your pending invitations are at "
            "GET /v1/me/invitations (accept or decline each one there). It expires at "
            "{{expires_at}}. If you do not know who this is, decline it.",
            "<p>{{actor_name}} invited you to join the organization &ldquo;{{org_name}}&rdquo; "
            "as {{role}}.</p><p>Nothing changes unless you accept: your pending invitations are "
            "at <code>GET /v1/me/invitations</code> (accept or decline each one there). It "
            "expires at {{expires_at}}. If you do not know who this is, decline it.</p>",
        },
    [NOTIF_TASK_ASSIGNED] =
        {
            "Task assigned to you: {{title}}",
            "{{actor_name}} assigned you the task \"{{title}}\".",
            "<p>{{actor_name}} assigned you the task <strong>{{title}}</strong>.</p>",
        },
    [NOTIF_TASK_COMPLETED] =
        {
            "Task completed: {{title}}",
            "{{actor_name}} completed the task \"{{title}}\" that you created.",
            "<p>{{actor_name}} completed the task <strong>{{title}}</strong> that you created.</p>",
        },
    [NOTIF_TASK_COMMENTED] =
        {
            "New comment on {{title}}",
            "{{actor_name}} commented on the task \"{{title}}\".",
            "<p>{{actor_name}} commented on the task <strong>{{title}}</strong>.</p>",
        },
    [NOTIF_INVOICE_PAYMENT_FAILED] =
        {
            "Payment failed for {{org_name}}",
            "The payment of {{amount}} for invoice {{invoice}} failed. Update the payment method "
            "to keep the subscription active.",
            "<p>The payment of <strong>{{amount}}</strong> for invoice {{invoice}} failed.</p>"
            "<p>Update the payment method to keep the subscription active.</p>",
        },
    [NOTIF_SUBSCRIPTION_CHANGED] =
        {
            "Subscription changed for {{org_name}}",
            "The subscription is now on the {{plan}} plan (status: {{status}}).",
            "<p>The subscription is now on the <strong>{{plan}}</strong> plan "
            "(status: {{status}}).</p>",
        },
};

/* The frame around every email. In the text layout {{content}} is the
 * rendered body; the HTML layout is split around the content, which is
 * rendered (and escaped) on its own and must not be escaped twice. */
static const char TEXT_LAYOUT[] =
    "Hi {{recipient_name}},\r\n\r\n{{content}}\r\n\r\n-- \r\nBulkhead\r\n"
    "You get this email because of your notification preferences "
    "(PUT /v1/me/notification-preferences).\r\n";
static const char HTML_HEAD[] =
    "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>{{title}}</title></head>\r\n"
    "<body style=\"font-family: sans-serif; line-height: 1.5\">\r\n"
    "<p>Hi {{recipient_name}},</p>\r\n";
static const char HTML_TAIL[] =
    "\r\n<hr><p style=\"color: #666; font-size: small\">Bulkhead. You get this email because of "
    "your notification preferences.</p>\r\n</body></html>\r\n";

static void sb_escaped(struct notifications__buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': notifications__buf_add(b, "&amp;", 5); break;
        case '<': notifications__buf_add(b, "&lt;", 4); break;
        case '>': notifications__buf_add(b, "&gt;", 4); break;
        case '"': notifications__buf_add(b, "&quot;", 6); break;
        case '\'': notifications__buf_add(b, "&#39;", 5); break;
        default: notifications__buf_add(b, s, 1);
        }
    }
}

char *notifications__expand(const char *tmpl, const json_t *vars, bool html)
{
    struct notifications__buf b = {0};
    const char *p = tmpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!open || !close) {
            notifications__buf_add(&b, p, strlen(p));
            break;
        }
        notifications__buf_add(&b, p, (size_t)(open - p));
        char name[64];
        size_t n = (size_t)(close - open - 2);
        if (n < sizeof name) {
            memcpy(name, open + 2, n);
            name[n] = '\0';
            const json_t *v = json_object_get(vars, name);
            char num[32];
            const char *text = "";
            if (json_is_string(v)) {
                text = json_string_value(v);
            } else if (json_is_integer(v)) {
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                text = num;
            }
            if (html)
                sb_escaped(&b, text);
            else
                notifications__buf_add(&b, text, strlen(text));
        }
        p = close + 2;
    }
    return notifications__buf_finish(&b, NULL);
}

void notifications__rendered_release(struct notifications__rendered *r)
{
    free(r->title);
    free(r->body);
    free(r->email_text);
    free(r->email_html);
    memset(r, 0, sizeof *r);
}

int notifications__render(enum notifications__type type, const json_t *vars,
                          struct notifications__rendered *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)type >= NOTIF_N_TYPES)
        return BH_EINVAL;
    const struct template *t = &templates[type];
    char *core = NULL, *head = NULL, *tail = NULL;
    json_t *layout_vars = json_deep_copy(vars);
    int rc = BH_ENOMEM;

    out->title = notifications__expand(t->title, vars, false);
    out->body = notifications__expand(t->body, vars, false);
    if (!out->title || !out->body || !layout_vars)
        goto out;
    /* The title is a value like any other: the HTML head escapes it. */
    if (json_object_set_new(layout_vars, "title", json_string(out->title)) != 0 ||
        json_object_set_new(layout_vars, "content", json_string(out->body)) != 0)
        goto out;
    out->email_text = notifications__expand(TEXT_LAYOUT, layout_vars, false);
    core = notifications__expand(t->html, vars, true);
    head = notifications__expand(HTML_HEAD, layout_vars, true);
    tail = notifications__expand(HTML_TAIL, layout_vars, true);
    if (!out->email_text || !core || !head || !tail)
        goto out;
    struct notifications__buf b = {0};
    notifications__buf_add(&b, head, strlen(head));
    notifications__buf_add(&b, core, strlen(core));
    notifications__buf_add(&b, tail, strlen(tail));
    out->email_html = notifications__buf_finish(&b, NULL);
    if (out->email_html)
        rc = 0;
out:
    free(core);
    free(head);
    free(tail);
    json_decref(layout_vars);
    if (rc != 0)
        notifications__rendered_release(out);
    return rc;
}
