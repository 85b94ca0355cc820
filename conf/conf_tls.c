/* conf_tls.c — see conf_tls.h. */
#include "conf_tls.h"

#include <libpq-fe.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libpq's sslmode values, weakest first. */
static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                    "verify-full"};

static int rank(const char *mode)
{
    for (int i = 0; i < (int)(sizeof modes / sizeof modes[0]); i++)
        if (strcasecmp(mode, modes[i]) == 0)
            return i;
    return -1;
}

static const char *server_mode(conf_server_tls_mode m)
{
    switch (m) {
    case CONF_STLS_DISABLE:
        return "disable";
    case CONF_STLS_PREFER:
        return "prefer";
    case CONF_STLS_REQUIRE:
        return "require";
    case CONF_STLS_VERIFY_CA:
        return "verify-ca";
    case CONF_STLS_VERIFY_FULL:
        return "verify-full";
    }
    return "verify-full"; /* unreachable; the strictest if it ever were */
}

void conf_libpq_tls_for(const conf_t *c, const char *conninfo, conf_libpq_tls *out)
{
    const char *mode = server_mode(c->server_tls_mode);
    char own_mode[16] = "";
    bool own_root = false;
    PQconninfoOption *opts = conninfo && *conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
    for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (o->val == NULL || *o->val == '\0')
            continue;
        if (strcmp(o->keyword, "sslmode") == 0)
            snprintf(own_mode, sizeof own_mode, "%s", o->val);
        else if (strcmp(o->keyword, "sslrootcert") == 0)
            own_root = true;
    }
    PQconninfoFree(opts);
    if (*own_mode && rank(own_mode) > rank(mode))
        mode = own_mode;
    snprintf(out->sslmode, sizeof out->sslmode, "%s", mode);
    out->sslrootcert[0] = '\0';
    if (rank(mode) < rank("verify-ca"))
        return; /* a CA file would make libpq verify under require too */
    if (*c->server_tls_ca_file) {
        snprintf(out->sslrootcert, sizeof out->sslrootcert, "%s", c->server_tls_ca_file);
    } else if (!own_root) {
        const char *env = getenv(X509_get_default_cert_file_env());
        snprintf(out->sslrootcert, sizeof out->sslrootcert, "%s",
                 env && *env ? env : X509_get_default_cert_file());
    }
}
