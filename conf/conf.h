/*
 * conf.h — pgcutover settings: one table (name, type, default, reloadable, doc) is the
 * single source for INI loading (inih, section [pgcutover]), --set overrides,
 * validation, SHOW CONFIG, --help and the example file.
 *
 * Errors are written as "file:line: reason" (or "--set NAME: reason") into a
 * caller-owned buffer. A conf_t owns its strings; conf_free releases them.
 */
#ifndef CONF_CONF_H
#define CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CONF_CUTOVER_AUTO, CONF_CUTOVER_MANUAL } conf_cutover_mode;
/* Whether an ALTER TABLE PostgreSQL runs on its catalog alone (osc_plan.h) runs as it is,
 * under the hold, instead of through a shadow copy (gh-ost's --attempt-instant-ddl). */
typedef enum { CONF_INSTANT_DDL_OFF, CONF_INSTANT_DDL_ON } conf_instant_ddl;
/* What becomes of a copy migration's old table when its revert window expires. */
typedef enum { CONF_OLD_TABLE_KEEP, CONF_OLD_TABLE_DROP } conf_old_table;
typedef enum { CONF_CTLS_DISABLE, CONF_CTLS_ALLOW, CONF_CTLS_REQUIRE } conf_client_tls_mode;
typedef enum {
    CONF_STLS_DISABLE,
    CONF_STLS_PREFER,
    CONF_STLS_REQUIRE,
    CONF_STLS_VERIFY_CA,
    CONF_STLS_VERIFY_FULL
} conf_server_tls_mode;
typedef enum { CONF_LOG_ERROR, CONF_LOG_WARNING, CONF_LOG_INFO, CONF_LOG_DEBUG } conf_log_level;

/* Every setting, by the names of DESIGN.md and the issues. Strings are malloc'ed,
 * never NULL (empty string when unset). Times in the unit their name says. */
typedef struct {
    char *listen_addr;       /* "127.0.0.1"; "*" = all; "" = no TCP listener */
    int listen_port;         /* 6432 */
    char *unix_socket_dir;   /* "/tmp"; "" = no unix socket */
    char *server_host;       /* "127.0.0.1"; a path starting with '/' = unix dir */
    int server_port;         /* 5432 */
    char *control_addr;      /* "127.0.0.1" */
    int control_port;        /* 6433 */
    char *control_role;      /* "pgcutover_admin" */
    int workers;             /* 0 = number of cores */
    int max_client_conn;     /* 1000 */
    int max_control_conn;    /* 10 */
    int client_login_timeout; /* seconds, 60; 0 = no limit */
    int64_t max_packet_size; /* bytes, 1 GiB */
    int max_prepared_statements_bytes; /* per session, bytes, 1 MiB; 0 = not tracked */
    conf_client_tls_mode client_tls_mode;
    char *client_tls_cert_file, *client_tls_key_file, *client_tls_ca_file;
    char *client_tls_protocols; /* "secure" = tlsv1.2,tlsv1.3 (pgbouncer syntax) */
    char *client_tls_ciphers;   /* OpenSSL cipher string for TLS 1.2 and older */
    conf_server_tls_mode server_tls_mode;
    char *server_tls_ca_file;
    int hold_timeout_ms;       /* 10000 */
    int shutdown_timeout;      /* seconds, 30 */
    conf_log_level log_level;  /* info */
    char *migration_conninfo;  /* libpq conninfo for the engine, "" = server_host/port */
    int batch_size;            /* rows, 10000 (start; adapts to target_batch_ms) */
    int target_batch_ms;       /* 200 */
    int max_rows_per_second;   /* 0 = unlimited */
    int batch_threshold_rows;  /* PGC006 above this many rows; 0 = never */
    int lock_timeout_ms;       /* 200 */
    int cutover_attempts;      /* 10 */
    conf_cutover_mode cutover; /* auto */
    conf_instant_ddl instant_ddl; /* on */
    int revert_window;         /* seconds, 86400; 0 = until DROP MIGRATION */
    conf_old_table revert_window_old_table; /* keep */
} conf_t;

typedef enum { CONF_T_STRING, CONF_T_INT, CONF_T_ENUM } conf_type;

/* One row of the settings table. */
typedef struct {
    const char *name;
    conf_type type;
    const char *default_value;      /* as it would be written in the INI file */
    bool reloadable;                /* takes effect on SIGHUP/RELOAD without restart */
    const char *doc;                /* one line */
    int64_t min, max;               /* CONF_T_INT range, inclusive */
    const char *const *enum_values; /* CONF_T_ENUM: NULL-terminated names, index = value */
    size_t offset;                  /* into conf_t */
} conf_setting;

/* The table, and its number of rows. */
extern const conf_setting conf_settings[];
extern const int conf_nsettings;

/* conf_init_defaults — fill *c with every default. false on out of memory. */
bool conf_init_defaults(conf_t *c);
/* conf_free — release the strings of *c; safe on a zeroed or half-filled conf_t. */
void conf_free(conf_t *c);

/*
 * conf_set — set one setting from its text form. Errors into err (errlen bytes):
 * unknown name, bad integer, out of range, not one of the enum values.
 */
bool conf_set(conf_t *c, const char *name, const char *value, char *err, size_t errlen);

/*
 * conf_load_file — apply an INI file on top of *c (inih). Only section [pgcutover]
 * (keys before any section or in another section are an error). ';' and '#' start
 * comment lines, " ;" an end-of-line comment; indented lines are ordinary lines (no
 * multi-line values); a line may hold at most 198 characters. On error returns false
 * with "path:line: reason" in err (the first error only; syntax errors too);
 * *c may be partly changed, so load into a copy.
 */
bool conf_load_file(conf_t *c, const char *path, char *err, size_t errlen);

/*
 * conf_validate — cross-setting checks: client_tls_mode allow/require needs cert and
 * key (and they go together), some client listener (listen_addr or unix_socket_dir),
 * non-empty server_host and control_role, listen_port != control_port on a shared
 * address. err may be NULL.
 */
bool conf_validate(const conf_t *c, char *err, size_t errlen);

/*
 * conf_copy — deep copy. dst is overwritten without being freed first (pass a fresh or
 * conf_free'd conf_t). false on out of memory, and then dst holds no strings.
 */
bool conf_copy(conf_t *dst, const conf_t *src);

/*
 * conf_value_text — current value of setting s in *c as text into buf, in the form
 * conf_set accepts (max_packet_size in the largest exact unit, e.g. "1GB", like
 * PostgreSQL's SHOW). Equals s->default_value for a conf_t fresh from conf_init_defaults.
 */
void conf_value_text(const conf_t *c, const conf_setting *s, char *buf, size_t len);
/*
 * conf_tls_protocols — parse a client_tls_protocols value (pgbouncer's syntax): a list of
 * tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3 separated by commas, colons or spaces, or "all"
 * (tlsv1.0-tlsv1.3), "secure" (tlsv1.2,tlsv1.3), "legacy" (= all), case-insensitive.
 * Fills *min and *max with OpenSSL's TLS1_x_VERSION for SSL_CTX_set_min/max_proto_version.
 * The versions must form a range (min and max cannot express "1.1 and 1.3 only").
 * Returns false with a reason in err on anything else.
 */
bool conf_tls_protocols(const char *value, int *min, int *max, char *err, size_t errlen);

/* conf_find — the row named name (case-sensitive), or NULL. */
const conf_setting *conf_find(const char *name);

/* Command line: pgcutover [-c FILE] [--set NAME=VALUE]... [--check] [--help] [--version] */
typedef struct {
    const char *config_file; /* NULL when none */
    bool check, help, version;
    int nsets;
    const char *sets[128]; /* "NAME=VALUE" strings, pointing into argv */
} conf_cmdline;

/*
 * conf_parse_cmdline — parse argv (argv[0] is skipped): -c FILE, -cFILE, --config FILE,
 * --config=FILE, --set NAME=VALUE, --set=NAME=VALUE, --check, -h/--help, -V/--version.
 * Only checks the form of --set (NAME=VALUE); conf_load checks names and values.
 * Errors (unknown option, missing argument, no '=', two files) into err.
 */
bool conf_parse_cmdline(int argc, char **argv, conf_cmdline *out, char *err, size_t errlen);
/*
 * conf_load — defaults, then the file (if any), then every --set, then conf_validate.
 * On error *c is untouched (caller's previous settings stay) and err says why.
 * On success the previous contents of *c are freed and replaced.
 */
bool conf_load(conf_t *c, const conf_cmdline *cl, char *err, size_t errlen);

/* conf_print_help — --help text: usage plus every setting with default and doc. */
void conf_print_help(FILE *out);
/* conf_print_example — a complete commented INI file from the table. */
void conf_print_example(FILE *out);

#endif
