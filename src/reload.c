/*
 * reload.c: RELOAD and SIGHUP. Loads a new config snapshot and swaps it in; databases whose
 * definition changed get their servers replaced as they are released; clients stay
 * connected. A broken config leaves the running one untouched.
 */
#include "pgusher/admin.h"
#include "pgusher/cancel.h"
#include "pgusher/client.h"
#include "pgusher/listener.h"
#include "pgusher/metrics.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/sdnotify.h"
#include "pgusher/tls.h"
#include "pgusher/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Settings that need a restart keep their running value; say so once. */
static void keep_restart_only(struct config *nc, const struct config *old)
{
    char a[1024], b[1024];
    for (size_t i = 0; i < config_nsettings; i++) {
        const struct cf_setting *s = &config_settings[i];
        if (s->reloadable)
            continue;
        const char *ov = config_setting_value(old, s, a, sizeof(a));
        const char *nv = config_setting_value(nc, s, b, sizeof(b));
        if (strcmp(ov, nv) == 0)
            continue;
        log_warning("setting \"%s\" changed from \"%s\" to \"%s\": it needs a restart, keeping "
                    "the running value",
                    s->name, config_setting_shown(old, s, a, sizeof(a)),
                    config_setting_shown(nc, s, b, sizeof(b)));
        char *ofield = (char *)&old->g + s->offset;
        char *nfield = (char *)&nc->g + s->offset;
        if (s->type == CF_STRING) {
            char **np = (char **)nfield;
            char *const *op = (char *const *)ofield;
            free(*np);
            *np = *op ? strdup(*op) : NULL;
        } else if (s->type == CF_TIME) {
            memcpy(nfield, ofield, sizeof(usec_t));
        } else {
            memcpy(nfield, ofield, sizeof(int));
        }
    }
}

void admin_apply_log_settings(const struct config *cf)
{
    struct log_settings ls = {
        .logfile = cf->g.logfile,
        .to_stderr = G.log_to_stderr,
        .verbose = G.cli_verbose + cf->g.verbose,
        .syslog = cf->g.syslog,
        .syslog_ident = cf->g.syslog_ident,
        .syslog_facility = cf->g.syslog_facility,
    };
    log_configure(&ls);
}

static void update_databases(const struct config *nc)
{
    const struct cf_database *star = config_find_database(nc, "*");
    struct list *it;
    list_for_each(it, &G.databases)
    {
        struct database *db = container_of(it, struct database, node);
        if (db->admin)
            continue;
        const struct cf_database *cfd = config_find_database(nc, db->name);
        if (!cfd && db->autodb)
            cfd = star;
        if (!cfd) {
            if (!db->removed) {
                log_info("database %s removed from the config, closing its connections",
                         db->name);
                db->removed = true;
                admin_kill_database(db, "database removed");
            }
            continue;
        }
        db->removed = false;
        if (db->autodb && cfd != star)
            db->autodb = false;
        const char *connstr = cfd->connstr ? cfd->connstr : "";
        if (strcmp(connstr, db->connstr) == 0)
            continue;
        struct cf_database *ncf = calloc(1, sizeof(*ncf));
        char err[512];
        if (!ncf || !config_parse_database(db->name, connstr, ncf, err, sizeof(err))) {
            log_error("database %s: cannot apply new definition", db->name);
            free(ncf);
            continue;
        }
        if (db->autodb && !ncf->dbname)
            ncf->dbname = strdup(db->name);
        log_info("database %s changed, its server connections will be replaced", db->name);
        database_redefine(db, ncf, connstr);
    }
    for (int i = 0; i < nc->ndbs; i++) {
        const struct cf_database *cfd = &nc->dbs[i];
        if (strcmp(cfd->name, "*") == 0 || database_find(cfd->name, false))
            continue;
        if (database_create(cfd->name, cfd->connstr ? cfd->connstr : "", false))
            log_info("database %s added", cfd->name);
    }
}

static bool reload_config(char *err, size_t errlen)
{
    struct config *nc = config_load(G.cf->path, err, errlen);
    if (!nc) {
        log_error("RELOAD failed, keeping the running configuration: %s", err);
        return false;
    }
    struct config *old = G.cf;
    keep_restart_only(nc, old);
    /* New handshakes use the new TLS settings; a broken key or certificate keeps the running
     * contexts (and the whole running configuration), with the file and the reason. */
    if (!tls_apply(&nc->g, err, errlen)) {
        log_error("RELOAD failed, keeping the running configuration: TLS: %s", err);
        config_free(nc);
        return false;
    }
    for (int i = 0; i < nc->nunimplemented; i++)
        log_warning("setting \"%s\" is accepted for compatibility but not implemented yet",
                    nc->unimplemented[i]);
    G.cf = nc;
    G.cf_gen++;
    admin_apply_log_settings(nc);
    listener_retune();
    if (nc->g.max_client_conn != old->g.max_client_conn)
        listener_size_fd_limit(nc);
    update_databases(nc);
    cancel_peers_apply();
    config_free(old);
    metrics_apply();
    struct list *di, *pi;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        list_for_each(pi, &db->pools)
        {
            pool_service(container_of(pi, struct pool, node));
        }
    }
    log_info("configuration reloaded");
    return true;
}

/* Tell the service manager a reload is over: READY=1 either way, so that systemctl reload
 * returns; the status line says whether the new configuration is in force. */
static bool reload_done(bool ok)
{
    sdnotify_ready(ok ? "serving; configuration reloaded"
                      : "serving; reload failed, running configuration kept");
    return ok;
}

bool admin_reload(char *err, size_t errlen)
{
    sdnotify_reloading();
    return reload_done(reload_config(err, errlen));
}
