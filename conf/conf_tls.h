/*
 * conf_tls.h — one TLS policy for every connection pgcutover makes to PostgreSQL: the
 * proxy's server connections (proxy/px_tls.c, OpenSSL) and the engine's libpq
 * connections (shadow/osc_db.c) both follow server_tls_mode and server_tls_ca_file.
 *
 * server_tls_mode has libpq's sslmode meaning ("SSL Support", libpq 34.19.1), so it
 * maps one to one. When migration_conninfo sets its own sslmode, the stronger of the
 * two wins (disable < allow < prefer < require < verify-ca < verify-full): the
 * settings are a floor the connection string cannot lower. The CA is
 * server_tls_ca_file when set (it wins over the conninfo's sslrootcert); when it is
 * empty and a verify mode applies, the conninfo's own sslrootcert if it has one, else
 * OpenSSL's default CA file (SSL_CERT_FILE or X509_get_default_cert_file(), the store
 * the proxy uses), since libpq 15 would otherwise look only in ~/.postgresql/root.crt.
 * There are no server-side client certificate settings, so sslcert/sslkey are left to
 * the conninfo.
 */
#ifndef CONF_TLS_H
#define CONF_TLS_H

#include "conf.h"

typedef struct {
    char sslmode[16];       /* libpq sslmode to pass; never empty */
    char sslrootcert[1024]; /* libpq sslrootcert to pass; "" = do not pass (keep the
                               conninfo's or libpq's) */
} conf_libpq_tls;

/*
 * conf_libpq_tls_for — the sslmode/sslrootcert a libpq connection must be given under
 * c's server_tls_* settings when it is made with conninfo (may be NULL or "", or a
 * string libpq cannot parse: then its own sslmode is not considered). Pass the result
 * after conninfo in PQconnectdbParams so that it overrides it.
 */
void conf_libpq_tls_for(const conf_t *c, const char *conninfo, conf_libpq_tls *out);

#endif
