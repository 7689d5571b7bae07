/*
 * varcache.h: the tracked parameters (client_encoding, DateStyle, TimeZone,
 * standard_conforming_strings, application_name, IntervalStyle and those named by
 * track_extra_parameters) of a client or server.
 */
#ifndef PGUSHER_VARCACHE_H
#define PGUSHER_VARCACHE_H

#include "pgusher/objects-t.h"

/* VAR_COUNT if name is not tracked. Case-insensitive, as PostgreSQL GUC names are. */
enum var_id varcache_lookup(const char *name);
const char *varcache_name(enum var_id id);
/* Name the extra tracked parameters (track_extra_parameters: a comma/space separated list;
 * the built-in ones are skipped). Returns how many were added, or -1 with err set (a name
 * of 64 bytes or more, more names than slots). Call once, before any connection. */
int varcache_track_extra(const char *list, char *err, size_t errlen);
void varcache_set(struct varcache *vc, enum var_id id, const char *value);
void varcache_copy(struct varcache *dst, const struct varcache *src);
void varcache_free(struct varcache *vc);
/* Shared, reference-counted copies of strings many connections hold alike (parameter
 * values, user and database names): str_intern returns the one copy (NULL when out of
 * memory), str_release drops a reference. */
const char *str_intern(const char *s);
void str_release(const char *s);
/* Distinct values stored (each kept once, shared by every varcache holding it). */
size_t varcache_interned_count(void);
/* Append "SET name=value;" for each var the client wants that differs on the server.
 * Returns the number of SETs appended. */
int varcache_diff_sql(const struct varcache *client, const struct varcache *server, char *buf,
                      size_t buflen);

#endif
