/*
 * secret.h: handling of passwords and password hashes in memory: wipe before free, compare
 * in constant time, read files that hold them without leaving copies behind. Never logs or
 * keeps a secret.
 */
#ifndef PGUSHER_SECRET_H
#define PGUSHER_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrite len bytes at p with zeros in a way the compiler cannot drop. NULL is fine. */
void secret_wipe(void *p, size_t len);

/* Wipe the NUL-terminated string s, then free it. NULL is fine. */
void secret_free_str(char *s);

/* Wipe len bytes at p, then free it. NULL is fine. */
void secret_free(void *p, size_t len);

/*
 * Read the whole file at path into a new NUL-terminated buffer, with read(2) rather than stdio
 * (no library buffer keeps a copy) and wiping every intermediate buffer. *len gets the number
 * of bytes read; free the result with secret_free(buf, *len + 1). NULL with errno set on error.
 */
char *secret_read_file(const char *path, size_t *len);

/*
 * Are the strings equal? The running time depends only on the length of given (the
 * untrusted side: a password sent by a client), never on where the strings differ nor on the
 * length or contents of want (the stored secret), so a wrong guess teaches nothing about
 * the secret, not even its length.
 */
bool secret_equal(const char *given, const char *want);

#endif
