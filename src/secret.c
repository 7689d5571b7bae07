/*
 * secret.c: wipes secrets before their memory is freed, compares them in constant time and
 * reads files holding them (ini, auth_file) without stray copies. Uses OpenSSL's
 * OPENSSL_cleanse; never logs or keeps a secret.
 */
#include "pgusher/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void secret_wipe(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

void secret_free(void *p, size_t len)
{
    secret_wipe(p, len);
    free(p);
}

void secret_free_str(char *s)
{
    if (s)
        secret_free(s, strlen(s));
}

char *secret_read_file(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int saved;

    if (fd < 0)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            /* Grow by hand, never realloc: it would free the old block without wiping it. */
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = malloc(ncap);
            if (!nbuf) {
                saved = ENOMEM;
                goto fail;
            }
            if (buf)
                memcpy(nbuf, buf, len);
            secret_free(buf, len);
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            saved = errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *len_out = len;
    return buf;
fail:
    secret_free(buf, len);
    close(fd);
    errno = saved;
    return NULL;
}

/*
 * Compare given against want one byte of given at a time, reading want cyclically, so the
 * loop runs strlen(given) times whatever want holds; the lengths are compared without a
 * branch and folded into the same accumulator. strlen(want) itself is a scan of our own
 * memory whose duration is not observable next to a network round trip.
 */
bool secret_equal(const char *given, const char *want)
{
    size_t glen = strlen(given), wlen = strlen(want);
    volatile unsigned char diff = 0;
    size_t lendiff = glen ^ wlen;
    for (size_t shift = 0; shift < sizeof(lendiff) * 8; shift += 8)
        diff |= (unsigned char)(lendiff >> shift);
    if (wlen == 0) {
        /* Nothing to read cyclically: an empty secret equals only an empty string, which the
         * length check above already decided; still touch given to keep the timing shape. */
        for (size_t i = 0; i < glen; i++)
            diff |= (unsigned char)(given[i] | 1);
        return diff == 0;
    }
    size_t j = 0;
    for (size_t i = 0; i < glen; i++) {
        diff |= (unsigned char)(given[i] ^ want[j]);
        /* j = (j + 1) % wlen without a data-dependent division or branch */
        j++;
        j &= (size_t)0 - (size_t)(j < wlen);
    }
    return diff == 0;
}
