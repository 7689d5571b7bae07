/*
 * version.h: what the build is: pgusher's version and the versions of the libraries it runs
 * with, for --version and the console's SHOW VERSION. Pure formatting, no state.
 */
#ifndef PGUSHER_VERSION_H
#define PGUSHER_VERSION_H

#include <stddef.h>

/* The --version text, one line each, as PgBouncer prints its libraries:
 * "pgusher 0.1.0\nlibuv 1.44.2\nadns: c-ares 1.18.1\ntls: OpenSSL ...\nsystemd: ...\n". */
void version_lines(char *buf, size_t len);
/* The same on one line, for SHOW VERSION's single column:
 * "pgusher 0.1.0 (libuv 1.44.2, c-ares 1.18.1, OpenSSL ..., libsystemd 252)". */
void version_summary(char *buf, size_t len);

#endif
