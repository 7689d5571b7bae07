/*
 * fuzz.h: small helpers shared by the libFuzzer harnesses of test/fuzz (header-only, static).
 * Harnesses never exit and never leak; a broken invariant is FUZZ_CHECK, which aborts so
 * libFuzzer records the input as a crash.
 */
#ifndef PGUSHER_FUZZ_H
#define PGUSHER_FUZZ_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A heap copy of exactly n bytes (NULL for n == 0 is avoided: always a real allocation), so
 * AddressSanitizer sees any read past the end of what the parser was given. */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    FUZZ_CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    return p;
}

/* A NUL-terminated heap copy; the parser sees the text up to the first NUL. */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
    char *p = malloc(n + 1);
    FUZZ_CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    p[n] = '\0';
    return p;
}

/* The model of a DataRow body that row parsers are checked against: a 2-byte column count,
 * then per column a 4-byte length and that many bytes (-1: NULL, no bytes), filling the body
 * exactly. Sets *ncols, and *c0 / *c0len to the first column's bytes (NULL when it is NULL or
 * there is none). */
static inline bool fuzz_datarow_model(const uint8_t *p, size_t n, unsigned *ncols,
                                      const uint8_t **c0, size_t *c0len)
{
    *c0 = NULL;
    *c0len = 0;
    if (n < 2)
        return false;
    *ncols = (unsigned)p[0] << 8 | p[1];
    size_t off = 2;
    for (unsigned i = 0; i < *ncols; i++) {
        if (n - off < 4)
            return false;
        uint32_t l = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                     (uint32_t)p[off + 2] << 8 | p[off + 3];
        off += 4;
        if (l == 0xffffffffu)
            continue;
        if (n - off < l)
            return false;
        if (i == 0) {
            *c0 = p + off;
            *c0len = l;
        }
        off += l;
    }
    return off == n;
}

/* Takes the next part of the input, up to (not including) byte sep or the end. Returns false
 * when nothing is left. The part points into the input; the cursor moves past sep. */
static inline bool fuzz_next_part(const uint8_t **data, size_t *size, uint8_t sep,
                                  const uint8_t **part, size_t *plen)
{
    if (*data == NULL)
        return false;
    const uint8_t *end = memchr(*data, sep, *size);
    *part = *data;
    if (end) {
        *plen = (size_t)(end - *data);
        *size -= *plen + 1;
        *data = end + 1;
    } else {
        *plen = *size;
        *data = NULL;
        *size = 0;
    }
    return true;
}

static char fuzz_dir[PATH_MAX];

/* Removes the working directory's files and the directory itself at a normal exit. */
static inline void fuzz_workdir_remove(void)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    char path[PATH_MAX + 256];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fuzz_dir);
}

/* A private working directory, created once (and removed at a normal exit), for harnesses
 * of file readers: they write their input there and the parsers resolve the relative names
 * in it from there. fuzz_enter_workdir() makes it the current directory for one input and
 * returns what fuzz_leave_workdir() needs to go back, so libFuzzer's own relative paths
 * (corpus, artifacts) keep working. */
static inline int fuzz_enter_workdir(void)
{
    if (!fuzz_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/pgusher-fuzz-XXXXXX",
                 base && *base ? base : "/tmp");
        FUZZ_CHECK(mkdtemp(fuzz_dir) != NULL);
        atexit(fuzz_workdir_remove);
    }
    int back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(back >= 0);
    FUZZ_CHECK(chdir(fuzz_dir) == 0);
    return back;
}

static inline void fuzz_leave_workdir(int back)
{
    FUZZ_CHECK(fchdir(back) == 0);
    close(back);
}

/* Turns every '/' into '_', so any path the input names is a plain name in the working
 * directory: the parsers under test may open files, but never /dev/zero or /etc/... */
static inline void fuzz_confine_paths(char *text, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (text[i] == '/')
            text[i] = '_';
}

/* Writes n bytes to name (relative to the working directory). */
static inline void fuzz_write_file(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(name, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(n == 0 || fwrite(data, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

#endif
