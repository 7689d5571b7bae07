/*
 * connstr.h: the libpq-style "key=value key2='quoted value'" syntax that [databases], [users]
 * and [peers] values use. Splits pairs only; knows no key names and never exits.
 */
#ifndef PGUSHER_CONNSTR_H
#define PGUSHER_CONNSTR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Called once per pair, in order. key and value are unquoted and valid only during the call.
 * Return false with a message in err to stop; connstr_parse then returns false with it.
 */
typedef bool (*connstr_pair_fn)(void *arg, const char *key, const char *value, char *err,
                                size_t errlen);

/*
 * Parse s as a sequence of key = value pairs separated by whitespace (whitespace around '='
 * is allowed). Keys are letters, digits and '_'. A value is either a bare word ending at
 * whitespace, or a single-quoted string in which \' or '' stand for a quote and \\ for a
 * backslash; in bare words a backslash escapes the next character. An empty string is valid
 * (no pairs). Errors are plain messages without location ("missing \"=\" after \"host\"").
 */
bool connstr_parse(const char *s, connstr_pair_fn fn, void *arg, char *err, size_t errlen);

#endif
