/* Unit tests of what a notification says and how an email is built: the
 * template engine (templates.c) and the MIME composer (mime.c). Values are
 * user input, so escaping and header safety are tested most. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void placeholders_are_filled_from_vars(void **state)
{
    json_t *vars = json_pack("{s:s, s:i}", "name", "Ada", "n", 3);
    char *s = notifications__expand("Hi {{name}}, {{n}} new, {{missing}}end", vars, false);
    assert_string_equal(s, "Hi Ada, 3 new, end");
    free(s);
    json_decref(vars);
}

static void unclosed_placeholder_is_kept_as_text(void **state)
{
    json_t *vars = json_object();
    char *s = notifications__expand("a {{b", vars, false);
    assert_string_equal(s, "a {{b");
    free(s);
    json_decref(vars);
}

static void html_expansion_escapes_values_but_not_the_template(void **state)
{
    json_t *vars = json_pack("{s:s}", "title", "<script>alert('x')</script> & \"q\"");
    char *s = notifications__expand("<b>{{title}}</b>", vars, true);
    assert_string_equal(s, "<b>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                           "&quot;q&quot;</b>");
    free(s);
    json_decref(vars);
}

static void task_assigned_renders_title_body_and_both_emails(void **state)
{
    json_t *vars = json_pack("{s:s, s:s, s:s}", "title", "Fix <b>login</b>", "actor_name", "Grace",
                             "recipient_name", "Ada & co");
    struct notifications__rendered r;
    assert_int_equal(notifications__render(NOTIF_TASK_ASSIGNED, vars, &r), 0);
    assert_string_equal(r.title, "Task assigned to you: Fix <b>login</b>");
    assert_string_equal(r.body, "Grace assigned you the task \"Fix <b>login</b>\".");
    assert_non_null(strstr(r.email_text, "Hi Ada & co,"));
    assert_non_null(strstr(r.email_text, r.body));
    /* HTML: the markup of the template stays, every value is escaped. */
    assert_non_null(strstr(r.email_html, "<strong>Fix &lt;b&gt;login&lt;/b&gt;</strong>"));
    assert_non_null(strstr(r.email_html, "Hi Ada &amp; co,"));
    assert_non_null(strstr(r.email_html, "<title>Task assigned to you: Fix &lt;b&gt;"));
    assert_null(strstr(r.email_html, "<b>login"));
    notifications__rendered_release(&r);
    json_decref(vars);
}

static void every_type_has_a_template(void **state)
{
    json_t *vars = json_object();
    for (int t = 0; t < NOTIF_N_TYPES; t++) {
        struct notifications__rendered r;
        assert_int_equal(notifications__render((enum notifications__type)t, vars, &r), 0);
        assert_true(strlen(r.title) > 0);
        assert_true(strlen(r.body) > 0);
        notifications__rendered_release(&r);
    }
    json_decref(vars);
}

static struct notifications__mail sample_mail(void)
{
    return (struct notifications__mail){
        .from = "Bulkhead <no-reply@bulkhead.localhost>",
        .to_address = "ada@example.com",
        .to_name = "Ada Lovelace",
        .subject = "Task assigned to you: Fix login",
        .text = "Hi Ada,\r\n\r\nA line = with an equals sign and caf\xc3\xa9.\r\n",
        .html = "<p>Hi</p>",
        .message_id = "<d1@bulkhead.localhost>",
        .date = 1767268800, /* 2026-01-01 12:00:00 UTC */
    };
}

static void message_has_headers_and_both_parts(void **state)
{
    struct notifications__mail m = sample_mail();
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), len);
    assert_non_null(strstr(msg, "Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n"));
    assert_non_null(strstr(msg, "From: Bulkhead <no-reply@bulkhead.localhost>\r\n"));
    assert_non_null(strstr(msg, "To: \"Ada Lovelace\" <ada@example.com>\r\n"));
    assert_non_null(strstr(msg, "Subject: Task assigned to you: Fix login\r\n"));
    assert_non_null(strstr(msg, "Message-ID: <d1@bulkhead.localhost>\r\n"));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=utf-8"));
    assert_non_null(strstr(msg, "Content-Type: text/html; charset=utf-8"));
    /* Quoted-printable: '=' and non-ASCII bytes are encoded. */
    assert_non_null(strstr(msg, "A line =3D with an equals sign and caf=C3=A9."));
    /* Every line ends in CRLF. */
    for (const char *p = msg; (p = strchr(p, '\n')); p++)
        assert_true(p > msg && p[-1] == '\r');
    free(msg);
}

static void long_lines_get_soft_breaks(void **state)
{
    struct notifications__mail m = sample_mail();
    char text[300];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    m.text = text;
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    assert_non_null(msg);
    for (const char *line = msg; *line;) {
        const char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= 76);
        line = end + 2;
    }
    free(msg);
}

static void non_ascii_subject_and_name_are_encoded_words(void **state)
{
    struct notifications__mail m = sample_mail();
    m.subject = "Caf\xc3\xa9 r\xc3\xa9union";
    m.to_name = "Jos\xc3\xa9";
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?Q2Fmw6kgcsOpdW5pb24=?=\r\n"));
    assert_non_null(strstr(msg, "To: =?UTF-8?B?Sm9zw6k=?= <ada@example.com>\r\n"));
    free(msg);
}

/* A value holding an encoded word must not be decoded by the reader into
 * text of its author's choosing: the whole value is encoded instead, so it
 * reads back as itself. */
static void encoded_words_in_values_are_encoded(void **state)
{
    struct notifications__mail m = sample_mail();
    m.subject = "Fix =?UTF-8?B?UGF5IG5vdw==?= now";
    m.to_name = "=?UTF-8?B?QWRtaW4=?=";
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    assert_non_null(msg);
    assert_non_null(
        strstr(msg, "Subject: =?UTF-8?B?Rml4ID0/VVRGLTg/Qj9VR0Y1SUc1dmR3PT0/PSBub3c=?=\r\n"));
    assert_non_null(
        strstr(msg, "To: =?UTF-8?B?PT9VVEYtOD9CP1FXUnRhVzQ9Pz0=?= <ada@example.com>\r\n"));
    free(msg);
}

static void header_injection_is_refused(void **state)
{
    struct notifications__mail m = sample_mail();
    size_t len = 0;
    m.subject = "Hello\r\nBcc: victim@example.com";
    assert_null(notifications__mime_compose(&m, &len));
    m = sample_mail();
    m.to_address = "ada@example.com>\r\nBcc: <x@example.com";
    assert_null(notifications__mime_compose(&m, &len));
    m = sample_mail();
    m.to_name = "Ada\nBcc: x@example.com";
    assert_null(notifications__mime_compose(&m, &len));
}

static void quotes_in_display_names_are_escaped(void **state)
{
    struct notifications__mail m = sample_mail();
    m.to_name = "Ada \"the\" Countess";
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    assert_non_null(strstr(msg, "To: \"Ada \\\"the\\\" Countess\" <ada@example.com>\r\n"));
    free(msg);
}

static void sender_address_is_taken_from_the_angle_brackets(void **state)
{
    char out[64];
    assert_true(notifications__mail_address("Bulkhead <a@b.c>", out, sizeof out));
    assert_string_equal(out, "a@b.c");
    assert_true(notifications__mail_address("a@b.c", out, sizeof out));
    assert_string_equal(out, "a@b.c");
    assert_false(notifications__mail_address("no address", out, sizeof out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders_are_filled_from_vars),
        cmocka_unit_test(unclosed_placeholder_is_kept_as_text),
        cmocka_unit_test(html_expansion_escapes_values_but_not_the_template),
        cmocka_unit_test(task_assigned_renders_title_body_and_both_emails),
        cmocka_unit_test(every_type_has_a_template),
        cmocka_unit_test(message_has_headers_and_both_parts),
        cmocka_unit_test(long_lines_get_soft_breaks),
        cmocka_unit_test(non_ascii_subject_and_name_are_encoded_words),
        cmocka_unit_test(encoded_words_in_values_are_encoded),
        cmocka_unit_test(header_injection_is_refused),
        cmocka_unit_test(quotes_in_display_names_are_escaped),
        cmocka_unit_test(sender_address_is_taken_from_the_angle_brackets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
