/*
 * authfile.h: reader for PgBouncer's auth_file (userlist.txt): "user" "secret" per line.
 * Returns names and secrets exactly as written; never judges or hashes secrets, never exits.
 */
#ifndef PGUSHER_AUTHFILE_H
#define PGUSHER_AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Called once per entry with the unquoted user name and secret (plain text, "md5..." or
 * "SCRAM-SHA-256$..."), valid only during the call. Return false with a message in err
 * (no location; the reader adds "FILE:LINE: ") to stop.
 */
typedef bool (*authfile_entry_fn)(void *arg, const char *file, int line, const char *user,
                                  const char *secret, char *err, size_t errlen);

/*
 * Format: each non-blank line that does not start with ';' or '#' holds at least two fields
 * in double quotes, separated by whitespace; "" inside a field stands for one quote; the rest
 * of the line after the second field is ignored. Empty user names are rejected.
 * Returns false with "FILE:LINE: what is wrong" (or "FILE: ..." if unreadable) in err.
 */
bool authfile_parse_file(const char *path, authfile_entry_fn fn, void *arg, char *err,
                         size_t errlen);

/* The same for text in memory; name stands in for the file name in callbacks and errors. */
bool authfile_parse_string(const char *text, const char *name, authfile_entry_fn fn, void *arg,
                           char *err, size_t errlen);

#endif
