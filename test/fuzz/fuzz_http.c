/*
 * fuzz_http.c: the metrics endpoint's request parser (http_parse_request). Checks that it
 * never reads past the input (the buffer is an exact-size copy: ASan sees any overread),
 * that a verdict is one of the documented ones, that an accepted head is well formed, and
 * that feeding the same bytes in two pieces, as the socket may, reaches the same verdict.
 *
 * Input: the bytes a client sends, as they arrive.
 */
#include "fuzz.h"

#include "pgusher/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_dup(data, size);
    struct http_request req;
    int r = http_parse_request((const char *)buf, size, &req);
    FUZZ_CHECK(r == HTTP_MORE || r == HTTP_DONE || r == HTTP_BAD_REQUEST ||
               r == HTTP_URI_TOO_LONG || r == HTTP_HEADERS_TOO_LARGE ||
               r == HTTP_VERSION_NOT_SUPPORTED);
    FUZZ_CHECK(r != HTTP_MORE || size < HTTP_HEAD_MAX);
    if (r == HTTP_DONE) {
        FUZZ_CHECK(req.head_len > 0 && req.head_len <= size && req.head_len <= HTTP_HEAD_MAX);
        FUZZ_CHECK(req.method[0] != '\0' && strlen(req.method) <= HTTP_METHOD_MAX);
        FUZZ_CHECK(req.path[0] == '/' && strlen(req.path) < HTTP_PATH_MAX);
        FUZZ_CHECK(strchr(req.path, '?') == NULL && strchr(req.path, ' ') == NULL);
        FUZZ_CHECK(req.version_minor >= 0 && req.version_minor <= 9);
        FUZZ_CHECK(req.nheaders >= 0 && req.nheaders <= HTTP_HEADERS_MAX);
        FUZZ_CHECK(buf[req.head_len - 1] == '\n');
        /* Bytes after the head (a body, a pipelined request) do not change the verdict. */
        struct http_request again;
        FUZZ_CHECK(http_parse_request((const char *)buf, req.head_len, &again) == HTTP_DONE);
        FUZZ_CHECK(again.head_len == req.head_len && strcmp(again.path, req.path) == 0);
    }
    /* A prefix never has a verdict the whole cannot have: an error stays an error... */
    if (size > 1) {
        struct http_request part;
        size_t cut = size / 2;
        uint8_t *pbuf = fuzz_dup(data, cut);
        int pr = http_parse_request((const char *)pbuf, cut, &part);
        if (pr == HTTP_DONE)
            FUZZ_CHECK(r == HTTP_DONE && part.head_len == req.head_len);
        else if (pr != HTTP_MORE)
            FUZZ_CHECK(r == pr || r == HTTP_HEADERS_TOO_LARGE || r == HTTP_BAD_REQUEST);
        free(pbuf);
    }
    free(buf);
    return 0;
}
