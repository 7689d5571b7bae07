/*
 * show.h: the console's SHOW commands (show.c): looked up by name for the parser, run for a
 * console client, or read row by row by another consumer (the metrics endpoint).
 */
#ifndef PGUSHER_SHOW_H
#define PGUSHER_SHOW_H

#include <stdbool.h>

struct client;

/* The SHOW_TABLE row named name (lower case, "pools"...), or -1. */
int show_find(const char *name);
/* The name of row index (a show_find result). */
const char *show_name(int index);
/* Print SHOW row index to the console client c. */
void show_run(struct client *c, int index);

/*
 * SHOW rows for a consumer other than a console client (the metrics endpoint): the same
 * builders, the same counting. columns() gets the column names once, row() each row's cells
 * as the console prints them (NULL for an SQL NULL); both pointers are valid during the call
 * only. what is one of "pools", "stats", "databases", "lists", "config", "version", "hosts";
 * false for anything else.
 */
struct show_sink {
    void (*columns)(void *arg, int n, const char *const *names);
    void (*row)(void *arg, int n, const char *const *cells);
    void *arg;
};
bool show_rows(const char *what, const struct show_sink *out);

#endif
