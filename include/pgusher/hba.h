/*
 * hba.h: PgBouncer's subset of pg_hba.conf (auth_hba_file) and of the ident map file
 * (auth_ident_file): parsed into an immutable rule list, matched per login. Pure: no
 * sockets, no logging; every problem comes back as "FILE:LINE: message".
 */
#ifndef PGUSHER_HBA_H
#define PGUSHER_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum hba_conn_type { HBA_LOCAL, HBA_HOST, HBA_HOSTSSL, HBA_HOSTNOSSL };

enum hba_method {
    HBA_TRUST,
    HBA_REJECT,
    HBA_MD5,
    HBA_SCRAM,    /* scram-sha-256 */
    HBA_PASSWORD, /* cleartext */
    HBA_PEER,
    HBA_CERT,
    HBA_LDAP, /* accepted (its options too), every login it matches is refused */
};

/* A database or user field: keywords as flags, the rest as names. */
#define HBA_NAME_ALL 1u
#define HBA_NAME_SAMEUSER 2u    /* database field only */
#define HBA_NAME_REPLICATION 4u /* database field only */
struct hba_names {
    unsigned flags;
    char **names;
    int n;
};

struct hba_rule {
    enum hba_conn_type type;
    struct hba_names db, user;
    bool addr_all; /* address "all" (or a local rule) */
    int af;        /* AF_INET or AF_INET6 when !addr_all */
    uint8_t addr[16], mask[16];
    enum hba_method method;
    char *map; /* map= option (peer, cert), or NULL */
    int line;
};

struct hba_ident {
    char *map, *sys_user, *pg_user; /* pg_user "all": any user */
    int line;
};

struct hba {
    struct hba_rule *rules;
    int nrules;
    struct hba_ident *idents;
    int nidents;
};

/*
 * Parse an HBA file (text, named name for messages; "@file" names are read relative to
 * name's directory) and an optional ident map file (ident_text may be NULL). Accepted, as
 * PgBouncer 1.25: types local, host, hostssl, hostnossl; database field all, sameuser,
 * replication, names, "quoted names", @file; user field all, names, @file (+group is not
 * supported); address all, IPv4/IPv6 with /bits or a separate mask; methods trust, reject,
 * md5, scram-sha-256, password, peer, cert, ldap (options ldap...=VALUE, VALUE may be
 * "quoted"); option map=NAME (which must be in the ident file). Keywords are case-sensitive, '#'
 * starts a comment. Any other line is an error (the whole file is refused, not the line skipped).
 * NULL with "NAME:LINE: what" in err.
 */
struct hba *hba_parse(const char *text, const char *name, const char *ident_text,
                      const char *ident_name, char *err, size_t errlen);

/* hba_parse on files; ident_path may be NULL or "". */
struct hba *hba_load(const char *path, const char *ident_path, char *err, size_t errlen);

void hba_free(struct hba *h);

/* One login to judge. addr is the TCP peer (NULL for the Unix socket). */
struct hba_login {
    bool is_unix, tls, replication;
    const struct sockaddr *addr;
    const char *db, *user;
};

/* The first rule that matches, or NULL (no rule: PgBouncer's "no authentication method is
 * found"). An IPv4-mapped IPv6 peer is matched as IPv4. */
const struct hba_rule *hba_match(const struct hba *h, const struct hba_login *login);

/* Does map allow OS user sys_user to log in as pg_user? */
bool hba_ident_allows(const struct hba *h, const char *map, const char *sys_user,
                      const char *pg_user);

/* "md5", "peer", ... as written in the file. */
const char *hba_method_name(enum hba_method m);

#endif
