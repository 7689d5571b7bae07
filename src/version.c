/*
 * version.c: formats the build's identity (pgusher's version, the run-time versions of
 * libuv, c-ares and OpenSSL, libsystemd's build-time one). Reads nothing but the libraries'
 * version calls; never logs.
 */
#include "pgusher/version.h"

#include "pgusher/sdnotify.h"

#include <ares.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <uv.h>

void version_lines(char *buf, size_t len)
{
    const char *sd = sdnotify_library_version();
    snprintf(buf, len, "pgusher %s\nlibuv %s\nadns: c-ares %s\ntls: %s\nsystemd: %s\n",
             PGUSHER_VERSION, uv_version_string(), ares_version(NULL),
             OpenSSL_version(OPENSSL_VERSION), sd ? sd : "no");
}

void version_summary(char *buf, size_t len)
{
    const char *sd = sdnotify_library_version();
    snprintf(buf, len, "pgusher %s (libuv %s, c-ares %s, %s%s%s)", PGUSHER_VERSION,
             uv_version_string(), ares_version(NULL), OpenSSL_version(OPENSSL_VERSION),
             sd ? ", " : "", sd ? sd : "");
}
