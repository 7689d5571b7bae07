/*
 * varcache.h: the tracked parameters (client_encoding, DateStyle, TimeZone,
 * standard_conforming_strings, application_name, IntervalStyle) of a client or server.
 */
#ifndef PGUSHER_VARCACHE_H
#define PGUSHER_VARCACHE_H

#include "pgusher/objects-t.h"

/* VAR_COUNT if name is not tracked. Case-insensitive, as PostgreSQL GUC names are. */
enum var_id varcache_lookup(const char *name);
const char *varcache_name(enum var_id id);
void varcache_set(struct varcache *vc, enum var_id id, const char *value);
void varcache_copy(struct varcache *dst, const struct varcache *src);
void varcache_free(struct varcache *vc);
/* Append "SET name=value;" for each var the client wants that differs on the server.
 * Returns the number of SETs appended. */
int varcache_diff_sql(const struct varcache *client, const struct varcache *server, char *buf,
                      size_t buflen);

#endif
