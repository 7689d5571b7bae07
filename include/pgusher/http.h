/*
 * http.h: the request-line and header parser of the metrics endpoint (HTTP/1.0 and 1.1,
 * no body). Pure: a byte buffer in, a verdict out; no sockets, no loop, no allocation.
 */
#ifndef PGUSHER_HTTP_H
#define PGUSHER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* Hard limits: a request head longer than HTTP_HEAD_MAX bytes or with more than
 * HTTP_HEADERS_MAX header lines is refused (431), a target longer than HTTP_PATH_MAX - 1
 * bytes too (414). */
#define HTTP_HEAD_MAX 8192
#define HTTP_HEADERS_MAX 64
#define HTTP_PATH_MAX 1024
#define HTTP_METHOD_MAX 16

/* Verdicts: HTTP_MORE (the head is not complete yet: read more), HTTP_DONE (a well-formed
 * head, in out), or the status code of the error to answer with before closing. */
enum {
    HTTP_MORE = 0,
    HTTP_DONE = 1,
    HTTP_BAD_REQUEST = 400,
    HTTP_URI_TOO_LONG = 414,
    HTTP_HEADERS_TOO_LARGE = 431,
    HTTP_VERSION_NOT_SUPPORTED = 505,
};

struct http_request {
    char method[HTTP_METHOD_MAX + 1]; /* as sent (case matters: "GET") */
    char path[HTTP_PATH_MAX];         /* the target up to '?' (origin form: starts with '/') */
    int version_minor;                /* HTTP/1.0 or HTTP/1.1 */
    int nheaders;
    bool accept_openmetrics; /* an Accept header names application/openmetrics-text */
    size_t head_len;         /* bytes of the head, through the blank line */
};

/*
 * Parse the start of a request in buf[0, len). Bare LF line ends are accepted as CRLF (RFC
 * 9112 section 2.2); obsolete line folding, NUL and other control bytes, a malformed request
 * line or header, a missing blank line within HTTP_HEAD_MAX bytes are errors. The request
 * line is judged as soon as it is complete, so garbage is refused without waiting for more.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *out);

/* The reason phrase of a status code this module or the endpoint answers with. */
const char *http_reason(int status);

#endif
