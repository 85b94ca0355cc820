/*
 * conf.c — the settings table and everything derived from it: defaults, conf_set,
 * INI loading (inih), --set overrides, validation, --help and the example file.
 */
#include "conf.h"
#include "conf_mask.h"

#include <errno.h>
#include <ini.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef PGC_VERSION
#define PGC_VERSION "unknown"
#endif

/* Enum fields are written through an int pointer. */
_Static_assert(sizeof(conf_cutover_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(conf_client_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(conf_server_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(conf_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(conf_old_table) == sizeof(int), "enum size");

static const char *const cutover_values[] = {"auto", "manual", NULL};
static const char *const off_on_values[] = {"off", "on", NULL};
static const char *const old_table_values[] = {"keep", "drop", NULL};
static const char *const ctls_values[] = {"disable", "allow", "require", NULL};
static const char *const stls_values[] = {"disable",   "prefer",      "require",
                                          "verify-ca", "verify-full", NULL};
static const char *const log_values[] = {"error", "warning", "info", "debug", NULL};

/* Mozilla's "intermediate" TLS 1.2 suites: forward secrecy (ECDHE, DHE) and AEAD
 * (AES-GCM, ChaCha20-Poly1305) only, so no static RSA key exchange and no CBC with
 * SHA-1 MACs. */
#define CONF_DEFAULT_TLS_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!PSK:!DSS"

#define OFF(f) offsetof(conf_t, f)
#define STR(n, def, rel, doc)                                                                      \
    {                                                                                              \
#n, CONF_T_STRING, def, rel, doc, 0, 0, NULL, OFF(n)                                       \
    }
#define INT(n, def, rel, lo, hi, doc)                                                              \
    {                                                                                              \
#n, CONF_T_INT, def, rel, doc, lo, hi, NULL, OFF(n)                                        \
    }
#define ENUM(n, def, rel, vals, doc)                                                               \
    {                                                                                              \
#n, CONF_T_ENUM, def, rel, doc, 0, 0, vals, OFF(n)                                         \
    }

const conf_setting conf_settings[] = {
    STR(listen_addr, "127.0.0.1", false,
        "Address for client connections: \"*\" = all interfaces, empty = no TCP listener."),
    INT(listen_port, "6432", false, 1, 65535,
        "TCP port for client connections; also names the unix socket .s.PGSQL.<port>."),
    STR(unix_socket_dir, "/tmp", false,
        "Directory of the client unix socket; empty = no unix socket."),
    STR(server_host, "127.0.0.1", true,
        "PostgreSQL server host; a path starting with '/' is a unix socket directory."),
    INT(server_port, "5432", true, 1, 65535, "PostgreSQL server port."),
    STR(control_addr, "127.0.0.1", false, "Address of the control console listener."),
    INT(control_port, "6433", false, 1, 65535, "TCP port of the control console."),
    STR(control_role, "pgcutover_admin", true,
        "Console users must be members of this role (or superusers)."),
    INT(workers, "0", false, 0, 256, "Proxy worker threads; 0 = number of CPU cores."),
    INT(max_client_conn, "1000", true, 1, 100000,
        "Maximum client connections; further ones are refused."),
    INT(max_control_conn, "10", true, 1, 1000,
        "Maximum control console connections (operators and pgcutover run); further ones "
        "get 53300."),
    INT(client_login_timeout, "60", true, 0, 86400,
        "Seconds from accept to the first ReadyForQuery (TLS, startup, authentication) on "
        "both ports; then the connection is closed. 0 = no limit."),
    INT(max_packet_size, "1GB", true, 1024, 1073741824,
        "Largest protocol message accepted, in bytes (units B, kB, MB, GB allowed)."),
    INT(max_prepared_statements_bytes, "1048576", true, 0, 1073741824,
        "Bytes per session for the prepared statements re-prepared after a swap; past it "
        "the session is untracked (left to PostgreSQL). 0 = none tracked."),
    ENUM(client_tls_mode, "disable", false, ctls_values,
         "TLS towards clients: disable, allow (if the client asks) or require."),
    STR(client_tls_cert_file, "", false, "PEM certificate presented to clients."),
    STR(client_tls_key_file, "", false, "PEM private key of client_tls_cert_file."),
    STR(client_tls_ca_file, "", false,
        "PEM CA bundle to verify client certificates; empty = no client certificates."),
    STR(client_tls_protocols, "secure", false,
        "TLS versions offered to clients: secure (tlsv1.2,tlsv1.3), all, or a list such as "
        "tlsv1.2,tlsv1.3."),
    STR(client_tls_ciphers, CONF_DEFAULT_TLS_CIPHERS, false,
        "OpenSSL cipher list for client TLS 1.2 (TLS 1.3 suites are OpenSSL's); default: "
        "ECDHE/DHE with AES-GCM or ChaCha20-Poly1305 only."),
    ENUM(server_tls_mode, "disable", true, stls_values,
         "TLS towards PostgreSQL for the proxy's and the engine's connections, with the "
         "meaning of libpq's sslmode."),
    STR(server_tls_ca_file, "", true,
        "PEM CA bundle for verify-ca/verify-full (proxy and engine); empty = the system's "
        "default store."),
    INT(hold_timeout_ms, "10000", true, 1, 3600000,
        "Longest the proxy holds a client transaction (PAUSE, cutover), in ms."),
    INT(shutdown_timeout, "30", true, 0, 86400,
        "Seconds to wait for open transactions on SIGTERM/SHUTDOWN before closing."),
    ENUM(log_level, "info", true, log_values, "Log verbosity: error, warning, info or debug."),
    STR(migration_conninfo, "", true,
        "libpq conninfo for the migration engine; empty = server_host and server_port. Its "
        "sslmode cannot lower server_tls_mode; its password is masked in SHOW CONFIG and logs."),
    INT(batch_size, "10000", true, 1, 10000000,
        "Rows per backfill batch at start; adapts to target_batch_ms."),
    INT(target_batch_ms, "200", true, 1, 60000, "Backfill batch duration to aim for, in ms."),
    INT(max_rows_per_second, "0", true, 0, 1000000000,
        "Backfill rate cap in rows per second; 0 = unlimited."),
    INT(batch_threshold_rows, "100000", true, 0, 2000000000,
        "migrate plan warns (PGC006) about an UPDATE/DELETE expected to touch more rows than "
        "this in one transaction, and suggests batching it; 0 = never."),
    INT(lock_timeout_ms, "200", true, 1, 600000,
        "lock_timeout for each lock on the live table (cutover, triggers), in ms."),
    INT(cutover_attempts, "10", true, 1, 1000,
        "Cutover lock attempts, with back-off, before the cutover gives up."),
    ENUM(cutover, "auto", true, cutover_values,
         "auto = swap as soon as verified; manual = wait for CUTOVER MIGRATION n."),
    ENUM(instant_ddl, "on", true, off_on_values,
         "on = each ALTER TABLE takes the cheapest safe strategy PLAN shows (instant, validate "
         "or copy); off = every ALTER TABLE goes through the shadow copy."),
    INT(revert_window, "86400", true, 0, 315360000,
        "Seconds a copy migration stays revertible after its swap (REVERT MIGRATION n); "
        "then its reverse capture is dropped. 0 = until DROP MIGRATION n."),
    ENUM(revert_window_old_table, "keep", true, old_table_values,
         "When a revert window expires: keep the old table (DROP MIGRATION n drops it) or "
         "drop it."),
};

const int conf_nsettings = (int)(sizeof(conf_settings) / sizeof(conf_settings[0]));

static void fmt(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

/* max_packet_size is the one int64_t field and the one that takes memory units. */
static bool is_size(const conf_setting *s)
{
    return s->offset == offsetof(conf_t, max_packet_size);
}

static char **str_field(conf_t *c, const conf_setting *s)
{
    return (char **)((char *)c + s->offset);
}

static const struct {
    const char *name;
    int64_t mult;
} size_units[] = {{"B", 1},
                  {"kB", 1024},
                  {"MB", 1024 * 1024},
                  {"GB", 1024 * 1024 * 1024},
                  {"TB", (int64_t)1024 * 1024 * 1024 * 1024}};

/* Parse value as a base-10 integer (with an optional memory unit for sizes). */
static bool parse_int(const conf_setting *s, const char *value, int64_t *out, char *reason,
                      size_t len)
{
    char *end;
    long long v;
    bool overflow;

    errno = 0;
    v = strtoll(value, &end, 10);
    overflow = errno == ERANGE;
    if (end == value ||
        !(value[0] == '-' || value[0] == '+' || (value[0] >= '0' && value[0] <= '9')))
        goto bad;
    if (*end != '\0') {
        size_t i;

        if (!is_size(s))
            goto bad;
        while (*end == ' ')
            end++;
        for (i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++)
            if (strcmp(end, size_units[i].name) == 0)
                break;
        if (i == sizeof(size_units) / sizeof(size_units[0]))
            goto bad;
        if (v > LLONG_MAX / size_units[i].mult || v < LLONG_MIN / size_units[i].mult)
            overflow = true;
        else
            v *= size_units[i].mult;
    }
    if (overflow || v < s->min || v > s->max) {
        fmt(reason, len, "%s is out of range (%lld..%lld)", value, (long long)s->min,
            (long long)s->max);
        return false;
    }
    *out = v;
    return true;
bad:
    if (is_size(s))
        fmt(reason, len, "\"%s\" is not a size (an integer, optionally with B, kB, MB, GB, TB)",
            value);
    else
        fmt(reason, len, "\"%s\" is not an integer", value);
    return false;
}

bool conf_tls_protocols(const char *value, int *min, int *max, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        int lo, hi;
    } words[] = {{"tlsv1.0", TLS1_VERSION, TLS1_VERSION},
                 {"tlsv1.1", TLS1_1_VERSION, TLS1_1_VERSION},
                 {"tlsv1.2", TLS1_2_VERSION, TLS1_2_VERSION},
                 {"tlsv1.3", TLS1_3_VERSION, TLS1_3_VERSION},
                 {"all", TLS1_VERSION, TLS1_3_VERSION},
                 {"legacy", TLS1_VERSION, TLS1_3_VERSION},
                 {"secure", TLS1_2_VERSION, TLS1_3_VERSION}};
    /* which of 1.0 .. 1.3 are asked for */
    bool want[4] = {false, false, false, false};
    const char *p = value;
    int lo = -1, hi = -1, n = 0;

    while (*p != '\0') {
        size_t k = strcspn(p, ", :"), i;

        if (k == 0) {
            p++;
            continue;
        }
        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strlen(words[i].name) == k && strncasecmp(p, words[i].name, k) == 0)
                break;
        if (i == sizeof(words) / sizeof(words[0])) {
            fmt(err, errlen,
                "\"%.*s\" is not a TLS protocol (tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, all, "
                "secure, legacy)",
                (int)k, p);
            return false;
        }
        for (int v = words[i].lo; v <= words[i].hi; v++)
            want[v - TLS1_VERSION] = true;
        n++;
        p += k;
    }
    if (n == 0) {
        fmt(err, errlen, "no TLS protocol given");
        return false;
    }
    for (int v = 0; v < 4; v++) {
        if (!want[v])
            continue;
        if (lo < 0)
            lo = v;
        else if (hi != v - 1) {
            fmt(err, errlen, "\"%s\" leaves a gap between TLS versions; give a range", value);
            return false;
        }
        hi = v;
    }
    *min = TLS1_VERSION + lo;
    *max = TLS1_VERSION + hi;
    return true;
}

/* check_string — value checks of string settings that have a syntax: the TLS protocol
 * list, and the cipher list (OpenSSL must select at least one cipher from it). */
static bool check_string(const conf_setting *s, const char *value, char *reason, size_t len)
{
    if (s->offset == offsetof(conf_t, client_tls_protocols)) {
        int lo, hi;

        return conf_tls_protocols(value, &lo, &hi, reason, len);
    }
    if (s->offset == offsetof(conf_t, client_tls_ciphers)) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        bool ok;

        if (ctx == NULL) {
            fmt(reason, len, "out of memory");
            return false;
        }
        ok = value[0] != '\0' && SSL_CTX_set_cipher_list(ctx, value) == 1;
        SSL_CTX_free(ctx);
        ERR_clear_error();
        if (!ok)
            fmt(reason, len, "\"%s\" selects no cipher (an OpenSSL cipher list, see "
                             "openssl ciphers -v)",
                value);
        return ok;
    }
    return true;
}

/* Apply value to row s of *c; on error a reason without the setting's name. */
static bool set_row(conf_t *c, const conf_setting *s, const char *value, char *reason, size_t len)
{
    char *p = (char *)c + s->offset;

    switch (s->type) {
    case CONF_T_STRING: {
        char *dup;

        if (!check_string(s, value, reason, len))
            return false;
        dup = strdup(value);
        if (dup == NULL) {
            fmt(reason, len, "out of memory");
            return false;
        }
        free(*(char **)p);
        *(char **)p = dup;
        return true;
    }
    case CONF_T_INT: {
        int64_t v;

        if (!parse_int(s, value, &v, reason, len))
            return false;
        if (is_size(s))
            *(int64_t *)p = v;
        else
            *(int *)p = (int)v;
        return true;
    }
    case CONF_T_ENUM: {
        char list[256] = "";

        for (int i = 0; s->enum_values[i] != NULL; i++) {
            if (strcasecmp(value, s->enum_values[i]) == 0) {
                *(int *)p = i;
                return true;
            }
            if (i > 0)
                strncat(list, ", ", sizeof(list) - strlen(list) - 1);
            strncat(list, s->enum_values[i], sizeof(list) - strlen(list) - 1);
        }
        fmt(reason, len, "\"%s\" is not one of %s", value, list);
        return false;
    }
    }
    fmt(reason, len, "bad setting type");
    return false;
}

bool conf_init_defaults(conf_t *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < conf_nsettings; i++) {
        char reason[256];

        if (!set_row(c, &conf_settings[i], conf_settings[i].default_value, reason,
                     sizeof(reason))) {
            conf_free(c);
            return false;
        }
    }
    return true;
}

void conf_free(conf_t *c)
{
    for (int i = 0; i < conf_nsettings; i++) {
        if (conf_settings[i].type == CONF_T_STRING) {
            char **f = str_field(c, &conf_settings[i]);

            free(*f);
            *f = NULL;
        }
    }
}

const conf_setting *conf_find(const char *name)
{
    for (int i = 0; i < conf_nsettings; i++)
        if (strcmp(conf_settings[i].name, name) == 0)
            return &conf_settings[i];
    return NULL;
}

bool conf_set(conf_t *c, const char *name, const char *value, char *err, size_t errlen)
{
    const conf_setting *s = conf_find(name);
    char reason[384];

    if (s == NULL) {
        fmt(err, errlen, "unknown setting \"%s\"", name);
        return false;
    }
    /* A connection string libpq cannot read would only fail later, in the engine, and
     * libpq's message may quote the password: check it here, message masked. */
    if (strcmp(name, "migration_conninfo") == 0 && *value != '\0' &&
        !conf_conninfo_check(value, reason, sizeof(reason))) {
        fmt(err, errlen, "%s: %s", name, reason);
        return false;
    }
    if (!set_row(c, s, value, reason, sizeof(reason))) {
        fmt(err, errlen, "%s: %s", name, reason);
        return false;
    }
    return true;
}

/*
 * inih state: our own reader counts lines exactly as inih does (one per read), so the
 * handler knows its line, and strips indentation so inih never joins lines.
 */
typedef struct {
    conf_t *c;
    FILE *f;
    int lineno;   /* line being parsed */
    int err_line; /* first line with an error we reported, 0 = none */
    char msg[512];
} ini_ctx;

static char *ini_read_line(char *str, int num, void *stream)
{
    ini_ctx *x = stream;
    size_t n;

    if (fgets(str, num, x->f) == NULL)
        return NULL;
    x->lineno++;
    n = strlen(str);
    /* no multi-line values: an indented line is an ordinary line, not a continuation */
    if (n > 0 && (str[0] == ' ' || str[0] == '\t')) {
        size_t skip = strspn(str, " \t");

        memmove(str, str + skip, n - skip + 1);
        n -= skip;
    }
    if (n > 0 && str[n - 1] != '\n' && !feof(x->f) && x->err_line == 0) {
        x->err_line = x->lineno;
        fmt(x->msg, sizeof(x->msg), "line is too long (at most %d characters)", num - 2);
    }
    return str;
}

static int ini_on_value(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *x = user;

    if (x->err_line != 0)
        return 1; /* only the first error is reported; apply nothing after it */
    if (section[0] == '\0')
        fmt(x->msg, sizeof(x->msg), "setting \"%s\" is outside the [pgcutover] section", name);
    else if (strcmp(section, "pgcutover") != 0)
        fmt(x->msg, sizeof(x->msg), "setting \"%s\" is in section [%s]; only [pgcutover] is read",
            name, section);
    else if (conf_set(x->c, name, value, x->msg, sizeof(x->msg)))
        return 1;
    x->err_line = x->lineno;
    return 0;
}

bool conf_load_file(conf_t *c, const char *path, char *err, size_t errlen)
{
    ini_ctx x = {.c = c};
    int rc;

    x.f = fopen(path, "r");
    if (x.f == NULL) {
        fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    rc = ini_parse_stream(ini_read_line, &x, ini_on_value, &x);
    fclose(x.f);
    if (rc < 0) {
        fmt(err, errlen, "%s: %s", path, rc == -2 ? "out of memory" : "cannot read");
        return false;
    }
    if (x.err_line != 0 && (rc == 0 || x.err_line <= rc)) {
        fmt(err, errlen, "%s:%d: %s", path, x.err_line, x.msg);
        return false;
    }
    if (rc > 0) {
        fmt(err, errlen, "%s:%d: syntax error (expected \"name = value\" or \"[section]\")", path,
            rc);
        return false;
    }
    return true;
}

/* Addresses that can make two listeners collide on the same port. */
static bool addr_overlap(const char *a, const char *b)
{
    return strcmp(a, "*") == 0 || strcmp(b, "*") == 0 || strcmp(a, b) == 0;
}

bool conf_validate(const conf_t *c, char *err, size_t errlen)
{
    bool cert = c->client_tls_cert_file[0] != '\0', key = c->client_tls_key_file[0] != '\0';

    if (c->client_tls_mode != CONF_CTLS_DISABLE && (!cert || !key)) {
        fmt(err, errlen, "client_tls_mode = %s needs client_tls_cert_file and client_tls_key_file",
            ctls_values[c->client_tls_mode]);
        return false;
    }
    if (cert != key) {
        fmt(err, errlen, "client_tls_cert_file and client_tls_key_file must be set together");
        return false;
    }
    if (c->listen_addr[0] == '\0' && c->unix_socket_dir[0] == '\0') {
        fmt(err, errlen, "listen_addr and unix_socket_dir are both empty: no client listener");
        return false;
    }
    if (c->server_host[0] == '\0') {
        fmt(err, errlen, "server_host is empty");
        return false;
    }
    if (c->control_role[0] == '\0') {
        fmt(err, errlen, "control_role is empty");
        return false;
    }
    if (c->listen_addr[0] != '\0' && c->control_addr[0] != '\0' &&
        c->listen_port == c->control_port && addr_overlap(c->listen_addr, c->control_addr)) {
        fmt(err, errlen, "listen_port and control_port are both %d", c->listen_port);
        return false;
    }
    return true;
}

bool conf_copy(conf_t *dst, const conf_t *src)
{
    int i;

    *dst = *src;
    for (i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char **f = str_field(dst, s);

        if (s->type != CONF_T_STRING)
            continue;
        *f = strdup(*f != NULL ? *f : "");
        if (*f == NULL)
            break;
    }
    if (i == conf_nsettings)
        return true;
    for (; i < conf_nsettings; i++) /* these still alias src: drop them before freeing */
        if (conf_settings[i].type == CONF_T_STRING)
            *str_field(dst, &conf_settings[i]) = NULL;
    conf_free(dst);
    return false;
}

void conf_value_text(const conf_t *c, const conf_setting *s, char *buf, size_t len)
{
    const char *p = (const char *)c + s->offset;

    switch (s->type) {
    case CONF_T_STRING: {
        const char *v = *(char *const *)p;

        fmt(buf, len, "%s", v != NULL ? v : "");
        return;
    }
    case CONF_T_INT:
        if (is_size(s)) {
            int64_t v = *(const int64_t *)p;
            int u = (int)(sizeof(size_units) / sizeof(size_units[0])) - 1;

            /* like PostgreSQL's SHOW: the largest unit that divides exactly */
            while (u > 0 && (v == 0 || v % size_units[u].mult != 0))
                u--;
            if (u == 0)
                fmt(buf, len, "%lld", (long long)v);
            else
                fmt(buf, len, "%lld%s", (long long)(v / size_units[u].mult), size_units[u].name);
        } else {
            fmt(buf, len, "%d", *(const int *)p);
        }
        return;
    case CONF_T_ENUM: {
        int v = *(const int *)p, n = 0;

        while (s->enum_values[n] != NULL)
            n++;
        fmt(buf, len, "%s", v >= 0 && v < n ? s->enum_values[v] : "?");
        return;
    }
    }
    fmt(buf, len, "?");
}

bool conf_parse_cmdline(int argc, char **argv, conf_cmdline *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *arg = NULL;
        bool is_config = false, is_set = false;

        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "--set") == 0) {
            is_set = strcmp(a, "--set") == 0;
            is_config = !is_set;
            if (i + 1 >= argc) {
                fmt(err, errlen, "option %s needs %s", a, is_set ? "NAME=VALUE" : "a FILE");
                return false;
            }
            arg = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            is_config = true;
            arg = a + 9;
        } else if (strncmp(a, "-c", 2) == 0) {
            is_config = true;
            arg = a + 2;
        } else if (strncmp(a, "--set=", 6) == 0) {
            is_set = true;
            arg = a + 6;
        } else if (strcmp(a, "--check") == 0) {
            out->check = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            out->help = true;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            out->version = true;
        } else {
            fmt(err, errlen, "unknown %s \"%s\" (see pgcutover --help)",
                a[0] == '-' ? "option" : "argument", a);
            return false;
        }
        if (is_config) {
            if (out->config_file != NULL) {
                fmt(err, errlen, "only one configuration file may be given");
                return false;
            }
            if (arg[0] == '\0') {
                fmt(err, errlen, "empty configuration file name");
                return false;
            }
            out->config_file = arg;
        } else if (is_set) {
            const char *eq = strchr(arg, '=');

            if (eq == NULL || eq == arg) {
                fmt(err, errlen, "--set \"%s\": expected NAME=VALUE", arg);
                return false;
            }
            if (out->nsets == (int)(sizeof(out->sets) / sizeof(out->sets[0]))) {
                fmt(err, errlen, "too many --set options (at most %d)", out->nsets);
                return false;
            }
            out->sets[out->nsets++] = arg;
        }
    }
    return true;
}

/* Apply one "NAME=VALUE" of --set; errors as "--set NAME: reason". */
static bool apply_set(conf_t *c, const char *nv, char *err, size_t errlen)
{
    const char *eq = strchr(nv, '=');
    char name[128], reason[512];
    size_t n = eq != NULL ? (size_t)(eq - nv) : 0;

    if (eq == NULL || n == 0 || n >= sizeof(name)) {
        fmt(err, errlen, "--set \"%s\": expected NAME=VALUE", nv);
        return false;
    }
    memcpy(name, nv, n);
    name[n] = '\0';
    if (conf_find(name) == NULL) {
        fmt(err, errlen, "--set: unknown setting \"%s\"", name);
        return false;
    }
    if (!conf_set(c, name, eq + 1, reason, sizeof(reason))) {
        fmt(err, errlen, "--set %s", reason);
        return false;
    }
    return true;
}

bool conf_load(conf_t *c, const conf_cmdline *cl, char *err, size_t errlen)
{
    conf_t tmp;

    if (!conf_init_defaults(&tmp)) {
        fmt(err, errlen, "out of memory");
        return false;
    }
    if (cl != NULL && cl->config_file != NULL &&
        !conf_load_file(&tmp, cl->config_file, err, errlen))
        goto fail;
    for (int i = 0; cl != NULL && i < cl->nsets; i++)
        if (!apply_set(&tmp, cl->sets[i], err, errlen))
            goto fail;
    if (!conf_validate(&tmp, err, errlen))
        goto fail;
    conf_free(c);
    *c = tmp;
    return true;
fail:
    conf_free(&tmp);
    return false;
}

/* The allowed values of s, e.g. "1..65535" or "disable, allow, require". */
static void allowed_text(const conf_setting *s, char *buf, size_t len)
{
    buf[0] = '\0';
    if (s->type == CONF_T_INT) {
        fmt(buf, len, "%lld..%lld", (long long)s->min, (long long)s->max);
    } else if (s->type == CONF_T_ENUM) {
        for (int i = 0; s->enum_values[i] != NULL; i++) {
            if (i > 0)
                strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, s->enum_values[i], len - strlen(buf) - 1);
        }
    }
}

void conf_print_help(FILE *out)
{
    fprintf(out,
            "pgcutover %s — PostgreSQL proxy for online schema changes\n"
            "\n"
            "usage: pgcutover [-c FILE] [--set NAME=VALUE]... [--check] [--help] [--version]\n"
            "\n"
            "  -c, --config FILE     read settings from FILE (INI, section [pgcutover])\n"
            "  --set NAME=VALUE      override one setting after the file (repeatable)\n"
            "  --check               load and validate the settings, then exit\n"
            "  -h, --help            show this help and exit\n"
            "  -V, --version         show the version and exit\n"
            "\n"
            "settings (reload = takes effect on SIGHUP or RELOAD; restart = needs a restart):\n",
            PGC_VERSION);
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char allowed[256];

        allowed_text(s, allowed, sizeof(allowed));
        fprintf(out, "\n  %s = %s  (%s%s%s)\n      %s\n", s->name, s->default_value,
                s->reloadable ? "reload" : "restart", allowed[0] ? "; " : "", allowed, s->doc);
    }
}

void conf_print_example(FILE *out)
{
    fprintf(out, "; pgcutover.ini — every setting, at its default.\n"
                 "; Generated from the settings table in conf/conf.c (conf_print_example);\n"
                 "; a unit test keeps this file identical to it, so edit the table, not this.\n"
                 ";\n"
                 "; Syntax: \"name = value\" lines in the [pgcutover] section; ';' or '#'\n"
                 "; starts a comment line, \" ;\" an end-of-line comment; no quotes needed.\n"
                 "; Restart-only settings ignore SIGHUP/RELOAD; the others apply at once.\n"
                 "; Override any of them on the command line: --set name=value.\n"
                 "\n"
                 "[pgcutover]\n");
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char allowed[256];

        allowed_text(s, allowed, sizeof(allowed));
        fprintf(out, "\n; %s\n; default: %s; %s%s%s\n%s =%s%s\n", s->doc,
                s->default_value[0] ? s->default_value : "(empty)",
                s->reloadable ? "reloadable" : "restart required", allowed[0] ? "; allowed: " : "",
                allowed, s->name, s->default_value[0] ? " " : "", s->default_value);
    }
}
