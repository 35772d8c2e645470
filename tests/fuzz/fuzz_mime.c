/* Fuzzing the email composer (modules/notifications/src/mime.c): the input
 * is split on newlines into the recipient's name and address, the subject,
 * the two bodies and the sender. Whatever the fields hold, a message is
 * either refused or well-formed: header lines are 7-bit, end in CRLF and
 * are each one of the headers the composer writes (or its folded
 * continuation), so no field can add a header (Bcc: ...) or a MIME part;
 * the boundary appears exactly as the structure needs it; no line is
 * longer than RFC 5322's 998 characters. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *msg)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n---\n%s\n---\n", what, msg ? msg : "");
        abort();
    }
}

static const char *const headers[] = {
    "Date: ",         "From: ",           "To: ",           "Subject: ", "Message-ID: ",
    "MIME-Version: ", "Auto-Submitted: ", "Content-Type: ", NULL};

static int known_header(const char *line)
{
    if (line[0] == ' ' || line[0] == '\t')
        return 1; /* a folded continuation */
    for (int i = 0; headers[i]; i++)
        if (strncmp(line, headers[i], strlen(headers[i])) == 0)
            return 1;
    return 0;
}

static void check_message(const char *msg, size_t len)
{
    const char *end = strstr(msg, "\r\n\r\n");
    check(end != NULL, "a message has a header section", msg);
    for (const char *p = msg; p < end; p++)
        check((unsigned char)*p < 0x80, "header bytes are 7-bit", msg);
    for (const char *line = msg; line < end + 2;) {
        const char *eol = strstr(line, "\r\n");
        check(eol && eol <= end, "header lines end in CRLF", msg);
        check(memchr(line, '\n', (size_t)(eol - line)) == NULL &&
                  memchr(line, '\r', (size_t)(eol - line)) == NULL,
              "no bare CR or LF in a header", msg);
        check(known_header(line), "every header line is one the composer writes", msg);
        line = eol + 2;
    }
    size_t line_len = 0;
    for (size_t i = 0; i < len; i++) {
        line_len = msg[i] == '\n' ? 0 : line_len + 1;
        check(line_len <= 999, "no line longer than 998 characters", msg);
    }
    const char *b = strstr(msg, "boundary=\"");
    check(b != NULL, "a multipart message names its boundary", msg);
    char boundary[80];
    b += strlen("boundary=\"");
    const char *q = strchr(b, '"');
    check(q && (size_t)(q - b) < sizeof boundary - 3, "the boundary is quoted", msg);
    snprintf(boundary, sizeof boundary, "--%.*s", (int)(q - b), b);
    int count = 0;
    for (const char *p = strstr(end, boundary); p; p = strstr(p + 1, boundary))
        count++;
    check(count == 3, "the boundary opens two parts and closes the message, nowhere else", msg);
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
    /* name \n address \n subject \n text \n html \n an address to parse */
    char *f[6] = {"", "ada@example.com", "", "", "", "Bulkhead <no-reply@bulkhead.localhost>"};
    char *p = text;
    for (int i = 0; i < 6 && p; i++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        f[i] = p;
        p = nl ? nl + 1 : NULL;
    }
    struct notifications__mail m = {
        .from = "Bulkhead <no-reply@bulkhead.localhost>",
        .to_address = f[1],
        .to_name = f[0],
        .subject = f[2],
        .text = f[3],
        .html = f[4],
        .message_id = "<fuzz@bulkhead.localhost>",
        .date = 1800000000,
    };
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    if (msg) {
        check(strlen(msg) == len, "the length is the text's", msg);
        check_message(msg, len);
    }
    free(msg);
    char addr[256];
    if (notifications__mail_address(f[5], addr, sizeof addr))
        check(strchr(addr, '@') && !strpbrk(addr, " <>\"\r\n"), "an address is bare", addr);
    free(text);
    return 0;
}
