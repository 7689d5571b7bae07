/*
 * ini.h: the generic reader for PgBouncer-style ini files (sections, key = value, comments,
 * %include). It knows nothing about what keys mean and never exits; errors carry file:line.
 */
#ifndef PGUSHER_INI_H
#define PGUSHER_INI_H

#include <stdbool.h>
#include <stddef.h>

/* PgBouncer's limit on %include nesting (libusual's MAX_INCLUDE). */
#define INI_MAX_INCLUDE_DEPTH 10

/*
 * Called once per section header (key and value NULL) and once per "key = value" line.
 * file/line say where the line is; section is the current section name as written (NULL
 * before the first header). Keys arrive as written: a key quoted with double quotes
 * ("my db") arrives unquoted, with "" turned into ". Values are the rest of the line with
 * surrounding whitespace trimmed; quotes in values are NOT interpreted (PgBouncer compatible).
 * Return false with a message in err (no location; the reader adds "FILE:LINE: ") to stop.
 * All strings are valid only during the call.
 */
typedef bool (*ini_handler_fn)(void *arg, const char *file, int line, const char *section,
                               const char *key, const char *value, char *err, size_t errlen);

/*
 * Read the file at path and feed its lines to fn. "%include FILE" reads FILE in place; a
 * relative FILE is taken relative to the current working directory, as PgBouncer documents.
 * The current section carries into and out of included files (as in PgBouncer).
 * Include loops and nesting deeper than INI_MAX_INCLUDE_DEPTH are errors.
 * Returns false with "FILE:LINE: what is wrong" (or "FILE: ..." for unreadable files) in err.
 */
bool ini_parse_file(const char *path, ini_handler_fn fn, void *arg, char *err, size_t errlen);

/* The same for text held in memory; name is used as the file name in callbacks and errors.
 * %include works from here too (relative to the working directory). */
bool ini_parse_string(const char *text, const char *name, ini_handler_fn fn, void *arg, char *err,
                      size_t errlen);

#endif
