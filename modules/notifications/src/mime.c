/* Email messages as bytes: RFC 5322 headers, a multipart/alternative body
 * (plain text and HTML, quoted-printable UTF-8) and RFC 2047 encoded words for
 * non-ASCII headers and for headers that hold "=?". Pure functions; the transport sends what this
 * builds. A header value with a line break is refused, never passed through. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Printable ASCII, and short enough to stay on one header line as it is
 * (RFC 5322: 998 characters at most); anything else is written as folded
 * encoded words. */
static bool is_ascii_printable(const char *s)
{
    enum { MAX_PLAIN = 200 };
    size_t n = 0;
    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || n == MAX_PLAIN)
            return false;
    return true;
}

/* s as quoted-printable (RFC 2045): readable when the .eml file is opened,
 * safe for any byte. Line breaks stay hard breaks (CRLF); longer lines get
 * soft breaks ("=" CRLF); whitespace before a line end is encoded. */
static void add_quoted_printable(struct notifications__buf *b, const char *s)
{
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {
            p += *p == '\r';
            notifications__buf_str(b, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = p[1] == '\0' || p[1] == '\r' || p[1] == '\n';
        char enc[4];
        size_t n = 1;
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol)) {
            enc[0] = (char)*p;
        } else {
            snprintf(enc, sizeof enc, "=%02X", *p);
            n = 3;
        }
        if (col + n > 75) {
            notifications__buf_str(b, "=\r\n");
            col = 0;
        }
        notifications__buf_add(b, enc, n);
        col += n;
    }
    notifications__buf_str(b, "\r\n");
}

/* Length of the UTF-8 sequence that starts with byte c (1 for stray bytes). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xf0)
        return 4;
    if (c >= 0xe0)
        return 3;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* s as RFC 2047 encoded words (=?UTF-8?B?...?=), each holding whole
 * characters and short enough for a header line, folded with CRLF SP. */
static void add_encoded_words(struct notifications__buf *b, const char *s)
{
    enum { WORD_BYTES = 42 }; /* 42 bytes -> 56 base64 characters per word */
    size_t n = strlen(s), off = 0;
    char enc[80];
    bool first = true;
    while (off < n) {
        size_t take = 0;
        while (off + take < n) {
            size_t l = utf8_seq_len((unsigned char)s[off + take]);
            if (take + l > WORD_BYTES || off + take + l > n)
                break;
            take += l;
        }
        if (take == 0)
            take = 1; /* a truncated sequence at the end: pass the byte on */
        sodium_bin2base64(enc, sizeof enc, (const unsigned char *)s + off, take,
                          sodium_base64_VARIANT_ORIGINAL);
        if (!first)
            notifications__buf_str(b, "\r\n ");
        notifications__buf_str(b, "=?UTF-8?B?");
        notifications__buf_str(b, enc);
        notifications__buf_str(b, "?=");
        first = false;
        off += take;
    }
}

/* Text that a mail reader would show as something else unless encoded:
 * non-ASCII or control bytes, and "=?", which starts an encoded word, so a
 * value holding one would otherwise be decoded into text of its sender's
 * choosing. Such text goes out as encoded words, which decode to itself. */
static bool needs_encoding(const char *s)
{
    return !is_ascii_printable(s) || strstr(s, "=?") != NULL;
}

/* A display name: plain ASCII as a quoted string, anything else encoded. */
static void add_display_name(struct notifications__buf *b, const char *name)
{
    if (needs_encoding(name)) {
        add_encoded_words(b, name);
        return;
    }
    notifications__buf_str(b, "\"");
    for (; *name; name++) {
        if (*name == '"' || *name == '\\')
            notifications__buf_str(b, "\\");
        notifications__buf_add(b, name, 1);
    }
    notifications__buf_str(b, "\"");
}

bool notifications__mail_address(const char *from, char *out, size_t size)
{
    const char *lt = strrchr(from, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    const char *start = lt && gt ? lt + 1 : from;
    size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(from);
    if (n == 0 || n >= size || memchr(start, '@', n) == NULL)
        return false;
    /* A header holds 7-bit text only: an address with control characters
     * or bytes beyond ASCII (which signup allows) cannot be written. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)start[i] < 0x21 || (unsigned char)start[i] > 0x7e)
            return false;
    memcpy(out, start, n);
    out[n] = '\0';
    return strpbrk(out, "<>\"") == NULL;
}

/* The multipart/alternative body: the text part, the HTML part, the end. */
static void add_parts(struct notifications__buf *b, const char *boundary,
                      const struct notifications__mail *m)
{
    const char *parts[][2] = {{"text/plain", m->text}, {"text/html", m->html}};
    for (size_t i = 0; i < 2; i++) {
        notifications__buf_str(b, "\r\n--");
        notifications__buf_str(b, boundary);
        notifications__buf_str(b, "\r\nContent-Type: ");
        notifications__buf_str(b, parts[i][0]);
        notifications__buf_str(
            b, "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
        add_quoted_printable(b, parts[i][1]);
    }
    notifications__buf_str(b, "\r\n--");
    notifications__buf_str(b, boundary);
    notifications__buf_str(b, "--\r\n");
}

char *notifications__mime_compose(const struct notifications__mail *m, size_t *len)
{
    const char *checked[] = {m->from, m->to_address, m->to_name, m->subject, m->message_id};
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++)
        if (!checked[i] || has_line_break(checked[i]))
            return NULL;
    char to_addr[256];
    if (!notifications__mail_address(m->to_address, to_addr, sizeof to_addr))
        return NULL;

    /* "=_" never occurs in quoted-printable text, so neither can the boundary. */
    unsigned char rnd[12];
    char boundary[64], hex[25];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(boundary, sizeof boundary, "=_bulkhead_%s", hex);

    char date[64];
    struct tm tm;
    gmtime_r(&m->date, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);

    struct notifications__buf b = {0};
    notifications__buf_str(&b, "Date: ");
    notifications__buf_str(&b, date);
    notifications__buf_str(&b, "\r\nFrom: ");
    notifications__buf_str(&b, m->from);
    notifications__buf_str(&b, "\r\nTo: ");
    if (m->to_name[0]) {
        add_display_name(&b, m->to_name);
        notifications__buf_str(&b, " ");
    }
    notifications__buf_str(&b, "<");
    notifications__buf_str(&b, to_addr);
    notifications__buf_str(&b, ">\r\nSubject: ");
    if (needs_encoding(m->subject))
        add_encoded_words(&b, m->subject);
    else
        notifications__buf_str(&b, m->subject);
    notifications__buf_str(&b, "\r\nMessage-ID: ");
    notifications__buf_str(&b, m->message_id);
    notifications__buf_str(&b, "\r\nMIME-Version: 1.0\r\n"
                               "Auto-Submitted: auto-generated\r\n"
                               "Content-Type: multipart/alternative;\r\n boundary=\"");
    notifications__buf_str(&b, boundary);
    notifications__buf_str(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n");

    add_parts(&b, boundary, m);
    return notifications__buf_finish(&b, len);
}
