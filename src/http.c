/*
 * http.c: the request-line and header parser of the metrics endpoint. Hand-written rather
 * than libmicrohttpd: the endpoint needs one method, one path, no body, no keep-alive; a
 * bounded parser of ~200 lines (fuzzed: test/fuzz/fuzz_http.c) is a smaller attack surface
 * than a library with its own threads and fd set to drive from libuv. Pure: never touches a
 * socket, never allocates, never reads past len.
 */
#include "pgusher/http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the bytes of a method or a header name. */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Visible ASCII or obs-text (any byte >= 0x80): what a target may hold. */
static bool is_vchar(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f;
}

/* Find the end of the line starting at from: the offset of its '\n', or -1. The line's own
 * length excludes a '\r' before the '\n'. */
static long line_end(const char *buf, size_t len, size_t from, size_t *linelen)
{
    const char *nl = memchr(buf + from, '\n', len - from);
    if (!nl)
        return -1;
    size_t n = (size_t)(nl - (buf + from));
    if (n > 0 && buf[from + n - 1] == '\r')
        n--;
    *linelen = n;
    return nl - buf;
}

static int parse_request_line(const char *p, size_t n, struct http_request *out)
{
    size_t i = 0, m = 0;
    while (i < n && is_tchar((unsigned char)p[i])) {
        if (m >= HTTP_METHOD_MAX)
            return HTTP_BAD_REQUEST;
        out->method[m++] = p[i++];
    }
    out->method[m] = '\0';
    if (m == 0 || i >= n || p[i] != ' ')
        return HTTP_BAD_REQUEST;
    i++;
    size_t t0 = i;
    while (i < n && is_vchar((unsigned char)p[i]))
        i++;
    size_t tlen = i - t0;
    if (tlen == 0 || i >= n || p[i] != ' ')
        return HTTP_BAD_REQUEST;
    if (p[t0] != '/')
        return HTTP_BAD_REQUEST; /* only origin-form: no absolute URI, no "*" */
    size_t plen = 0;
    while (plen < tlen && p[t0 + plen] != '?')
        plen++;
    if (tlen >= HTTP_PATH_MAX)
        return HTTP_URI_TOO_LONG;
    memcpy(out->path, p + t0, plen);
    out->path[plen] = '\0';
    i++;
    static const char proto[] = "HTTP/";
    if (n - i != 8 || memcmp(p + i, proto, 5) != 0 || p[i + 6] != '.' || p[i + 5] < '0' ||
        p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9')
        return HTTP_BAD_REQUEST;
    if (p[i + 5] != '1')
        return HTTP_VERSION_NOT_SUPPORTED;
    out->version_minor = p[i + 7] - '0';
    return HTTP_DONE;
}

/* Does a header value (a comma-separated media-range list) name OpenMetrics? */
static bool names_openmetrics(const char *v, size_t n)
{
    static const char om[] = "application/openmetrics-text";
    const size_t omlen = sizeof(om) - 1;
    for (size_t i = 0; i + omlen <= n; i++)
        if (strncasecmp(v + i, om, omlen) == 0)
            return true;
    return false;
}

static int parse_header(const char *p, size_t n, struct http_request *out)
{
    if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
        return HTTP_BAD_REQUEST; /* obs-fold */
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return HTTP_BAD_REQUEST; /* no name, or a space before the colon */
    size_t namelen = i++;
    for (size_t j = i; j < n; j++) {
        unsigned char ch = (unsigned char)p[j];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return HTTP_BAD_REQUEST;
    }
    if (namelen == 6 && strncasecmp(p, "accept", 6) == 0 && names_openmetrics(p + i, n - i))
        out->accept_openmetrics = true;
    return HTTP_DONE;
}

int http_parse_request(const char *buf, size_t len, struct http_request *out)
{
    memset(out, 0, sizeof(*out));
    /* NUL and other control bytes fail the character classes of every part of a line. */
    size_t scan = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
    size_t pos = 0, n;
    /* RFC 9112 2.2: empty lines before the request line are ignored. */
    while (pos < scan && (buf[pos] == '\r' || buf[pos] == '\n')) {
        if (buf[pos] == '\r' && (pos + 1 >= scan || buf[pos + 1] != '\n'))
            break;
        pos += buf[pos] == '\r' ? 2 : 1;
    }
    long nl = line_end(buf, scan, pos, &n);
    if (nl < 0)
        return len >= HTTP_HEAD_MAX ? HTTP_HEADERS_TOO_LARGE : HTTP_MORE;
    int r = parse_request_line(buf + pos, n, out);
    if (r != HTTP_DONE)
        return r;
    pos = (size_t)nl + 1;
    for (;;) {
        nl = line_end(buf, scan, pos, &n);
        if (nl < 0)
            return len >= HTTP_HEAD_MAX ? HTTP_HEADERS_TOO_LARGE : HTTP_MORE;
        if (n == 0) {
            out->head_len = (size_t)nl + 1;
            return HTTP_DONE;
        }
        if (out->nheaders >= HTTP_HEADERS_MAX)
            return HTTP_HEADERS_TOO_LARGE;
        r = parse_header(buf + pos, n, out);
        if (r != HTTP_DONE)
            return r;
        out->nheaders++;
        pos = (size_t)nl + 1;
    }
}

static const struct {
    int status;
    const char *reason;
} REASONS[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {414, "URI Too Long"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

const char *http_reason(int status)
{
    for (size_t i = 0; i < sizeof(REASONS) / sizeof(REASONS[0]); i++)
        if (REASONS[i].status == status)
            return REASONS[i].reason;
    return "Error";
}
