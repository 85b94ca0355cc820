/* osc_adopt.c — see osc_adopt.h. */
#include "osc_adopt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "osc_db.h"
#include "osc_migrate.h"
#include "osc_split.h"

/* ---------- pure code: versions, checksums, folding rows ---------- */

/* Compare the digit runs a[0..na) and b[0..nb) as numbers of any length. */
static int num_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    while (na > 0 && *a == '0')
        a++, na--;
    while (nb > 0 && *b == '0')
        b++, nb--;
    if (na != nb)
        return na < nb ? -1 : 1;
    int c = memcmp(a, b, na);
    return c < 0 ? -1 : c > 0;
}

/* golang-migrate versions: unsigned numbers of any length; other text byte-wise. */
static int golang_cmp(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (strspn(a, "0123456789") != na || strspn(b, "0123456789") != nb || !na || !nb) {
        int c = strcmp(a, b);
        return c < 0 ? -1 : c > 0;
    }
    return num_cmp(a, na, b, nb);
}

int osc_flyway_compare(const char *a, const char *b)
{
    for (;;) {
        size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
        /* a missing part (end of the text) reads as 0: num_cmp of an empty run is 0 */
        int c = num_cmp(a, na, b, nb);
        if (c != 0)
            return c;
        a += na;
        b += nb;
        bool sa = *a == '.' || *a == '_', sb = *b == '.' || *b == '_';
        if ((*a && !sa) || (*b && !sb)) { /* not a version: the rest byte-wise */
            c = strcmp(a, b);
            return c < 0 ? -1 : c > 0;
        }
        if (!*a && !*b)
            return 0;
        a += sa;
        b += sb;
    }
}

int32_t osc_flyway_checksum(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) /* BomFilter: U+FEFF at the start */
        p += 3;
    uint32_t crc = 0xFFFFFFFFu;
    for (; *p; p++) {
        if (*p == '\r' || *p == '\n') /* BufferedReader.readLine drops every line break */
            continue;
        crc ^= *p;
        for (int k = 0; k < 8;
             k++) /* CRC-32, reflected polynomial 0xEDB88320 (java.util.zip.CRC32) */
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return (int32_t)~crc;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The entry of key (repeatable or versioned) in f, or NULL. */
static osc_fentry *entry_of(const osc_foreign *f, const char *key, bool repeatable)
{
    for (int i = f->n - 1; i >= 0; i--) {
        osc_fentry *e = &f->e[i];
        if (e->repeatable != repeatable)
            continue;
        if (f->tool == OSC_TOOL_FLYWAY && !repeatable ? osc_flyway_compare(e->key, key) == 0
                                                      : strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* The entry of key, made (state NOT) when missing; NULL on out of memory. */
static osc_fentry *entry_get(osc_foreign *f, const char *key, bool repeatable)
{
    osc_fentry *e = entry_of(f, key, repeatable);
    if (e)
        return e;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        osc_fentry *g = realloc(f->e, (size_t)cap * sizeof *g);
        if (g == NULL)
            return NULL;
        f->e = g;
        f->cap = cap;
    }
    e = &f->e[f->n];
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    if (e->key == NULL)
        return NULL;
    e->repeatable = repeatable;
    e->duration_ms = -1;
    f->n++;
    return e;
}

static bool entry_times(osc_fentry *e, const char *started, const char *finished,
                        double duration_ms)
{
    free(e->started_at);
    free(e->finished_at);
    e->started_at = dup_or_null(started);
    e->finished_at = dup_or_null(finished);
    e->duration_ms = duration_ms;
    return (e->started_at || !started) && (e->finished_at || !finished);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

bool osc_foreign_flyway_row(osc_foreign *f, const char *version, const char *description,
                            const char *type, const char *checksum, bool success,
                            const char *started, const char *finished, double duration_ms)
{
    type = type ? type : "";
    description = description ? description : "";
    if (strcmp(type, "SCHEMA") == 0) /* "<< Flyway Schema Creation >>": no migration */
        return true;
    if (ends_with(type, "BASELINE") || strcmp(description, "<< Flyway Baseline >>") == 0) {
        if (success && version &&
            (!f->has_baseline || osc_flyway_compare(version, f->baseline) > 0)) {
            snprintf(f->baseline, sizeof f->baseline, "%s", version);
            f->has_baseline = true;
        }
        return true;
    }
    bool repeatable = version == NULL;
    osc_fentry *e = entry_get(f, repeatable ? description : version, repeatable);
    if (e == NULL)
        return false;
    if (strcmp(type, "DELETE") == 0) { /* `flyway repair` of a removed file */
        if (success)
            e->state = OSC_FOREIGN_NOT;
        return true;
    }
    if (strncmp(type, "UNDO", 4) == 0) { /* UNDO_SQL, UNDO_JDBC, UNDO_SCRIPT */
        e->state = success ? OSC_FOREIGN_NOT : OSC_FOREIGN_FAILED;
        return true;
    }
    e->state = success ? OSC_FOREIGN_APPLIED : OSC_FOREIGN_FAILED;
    e->has_checksum = checksum != NULL;
    e->checksum = checksum ? (int32_t)strtol(checksum, NULL, 10) : 0;
    return entry_times(e, started, finished, duration_ms);
}

bool osc_foreign_prisma_row(osc_foreign *f, const char *migration_name, bool finished,
                            bool rolled_back, const char *started, const char *finished_at,
                            double duration_ms)
{
    osc_fentry *e = entry_get(f, migration_name ? migration_name : "", false);
    if (e == NULL)
        return false;
    if (!finished && !rolled_back) /* P3009: failed, or still running */
        e->state = OSC_FOREIGN_FAILED;
    else if (finished && !rolled_back && e->state != OSC_FOREIGN_FAILED) {
        e->state = OSC_FOREIGN_APPLIED;
        return entry_times(e, started, finished_at, duration_ms);
    }
    return true;
}

/* The entry that speaks for file (Flyway/Prisma), or NULL. */
static const osc_fentry *file_entry(const osc_foreign *f, const osc_mfile *file)
{
    if (!f->found || f->tool == OSC_TOOL_GOLANG || file->kind == OSC_MFILE_DOWN)
        return NULL;
    if (file->kind == OSC_MFILE_REPEATABLE)
        return f->tool == OSC_TOOL_FLYWAY ? entry_of(f, file->name, true) : NULL;
    return entry_of(f, file->version, false);
}

osc_foreign_state_t osc_foreign_state(const osc_foreign *f, const osc_mfile *file)
{
    if (!f->found || file->kind == OSC_MFILE_DOWN)
        return OSC_FOREIGN_NOT;
    if (f->tool == OSC_TOOL_GOLANG) {
        if (file->kind != OSC_MFILE_UP || !f->has_version || f->version[0] == '-')
            return OSC_FOREIGN_NOT;
        int c = golang_cmp(file->version, f->version);
        return c < 0      ? OSC_FOREIGN_APPLIED
               : c > 0    ? OSC_FOREIGN_NOT
               : f->dirty ? OSC_FOREIGN_FAILED
                          : OSC_FOREIGN_APPLIED;
    }
    const osc_fentry *e = file_entry(f, file);
    if (e == NULL) {
        bool below = f->tool == OSC_TOOL_FLYWAY && file->kind == OSC_MFILE_UP && f->has_baseline &&
                     osc_flyway_compare(file->version, f->baseline) <= 0;
        return below ? OSC_FOREIGN_APPLIED : OSC_FOREIGN_NOT;
    }
    if (e->state != OSC_FOREIGN_APPLIED || f->tool != OSC_TOOL_FLYWAY)
        return e->state;
    /* Flyway: a repeatable is applied only with the file's checksum (else outdated); a
     * versioned file with another checksum than its row's is what validate refuses */
    if (e->repeatable ? !e->has_checksum || e->checksum != osc_flyway_checksum(file->text)
                      : e->has_checksum && e->checksum != osc_flyway_checksum(file->text))
        return OSC_FOREIGN_CHANGED;
    return OSC_FOREIGN_APPLIED;
}

void osc_foreign_free(osc_foreign *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->e[i].key);
        free(f->e[i].started_at);
        free(f->e[i].finished_at);
    }
    free(f->e);
    memset(f, 0, sizeof *f);
}

const char *osc_foreign_name(const osc_foreign *f)
{
    return f->found ? f->name : "";
}

const char *osc_foreign_tool(const osc_foreign *f)
{
    static const char *const names[] = {"golang-migrate", "Flyway", "Prisma"};
    return names[f->tool];
}

/* ---------- reading the history ---------- */

typedef struct {
    const char *layout, *tool;
    const char *tables; /* the names it is known by, as a text[] literal */
    const char *cols; /* the columns it must have, as a text[] literal */
    bool exact;       /* exactly these columns, "name type" (golang-migrate) */
} tool_def;

static const tool_def tools[] = {
    {"golang-migrate", "golang-migrate", "{schema_migrations}",
     "{\"version bigint\",\"dirty boolean\"}", true},
    {"flyway", "Flyway", "{flyway_schema_history,schema_version}",
     "{installed_rank,version,description,type,script,checksum,installed_on,execution_time,"
     "success}",
     false},
    {"prisma", "Prisma", "{_prisma_migrations}",
     "{id,checksum,finished_at,migration_name,logs,rolled_back_at,started_at,applied_steps_count}",
     false},
};

/* Tables named one of $1 with def's columns, in any schema but pgcutover's and the
 * system ones: their qualified (quoted) names and whether user may SELECT them. */
static const char candidates_sql[] =
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), "
    "pg_catalog.has_table_privilege($3::name, c.oid, 'SELECT') "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "CROSS JOIN LATERAL (SELECT array_agg(a.attname::text || CASE WHEN $4::bool THEN ' ' || "
    "pg_catalog.format_type(a.atttypid, NULL) ELSE '' END) cols FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) a "
    "WHERE c.relname = ANY ($1::text[]) AND c.relkind IN ('r', 'p') AND n.nspname <> 'pgcutover' "
    "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND a.cols @> $2::text[] "
    "AND (NOT $4::bool OR cardinality(a.cols) = cardinality($2::text[])) ORDER BY 1";

static bool fail(char sqlstate[6], const char *code, char *err, size_t errlen, const char *what,
                 const char *detail)
{
    snprintf(sqlstate, 6, "%s", code);
    snprintf(err, errlen, "%s%s", what, detail ? detail : "");
    return false;
}

static bool read_golang(PGconn *c, const char *table, osc_foreign *f, char sqlstate[6], char *err,
                        size_t errlen)
{
    char sql[600], e[512];
    snprintf(sql, sizeof sql, "SELECT version::text, dirty FROM %s", table);
    PGresult *t = osc_exec(c, sql, 0, NULL, e, sizeof e, NULL);
    if (t == NULL)
        return fail(sqlstate, "XX000", err, errlen, "reading golang-migrate's history: ", e);
    bool ok = PQntuples(t) <= 1;
    if (!ok)
        snprintf(err, errlen,
                 "%s has %d rows; golang-migrate keeps exactly one (the current "
                 "version)",
                 f->name, PQntuples(t));
    else if (PQntuples(t) == 1) {
        f->has_version = true;
        snprintf(f->version, sizeof f->version, "%s", PQgetvalue(t, 0, 0));
        f->dirty = PQgetvalue(t, 0, 1)[0] == 't';
    }
    PQclear(t);
    if (!ok)
        snprintf(sqlstate, 6, "55000");
    return ok;
}

/* The value of column i of row r, or NULL for SQL NULL. */
static const char *val(const PGresult *t, int r, int i)
{
    return PQgetisnull(t, r, i) ? NULL : PQgetvalue(t, r, i);
}

static double num_or(const PGresult *t, int r, int i, double dflt)
{
    return PQgetisnull(t, r, i) ? dflt : strtod(PQgetvalue(t, r, i), NULL);
}

static bool read_rows(PGconn *c, const char *table, osc_foreign *f, char sqlstate[6], char *err,
                      size_t errlen)
{
    char sql[1200], e[512];
    if (f->tool == OSC_TOOL_FLYWAY)
        /* installed_on is a timestamp without time zone, written by Flyway's session: read
         * in this session's TimeZone; execution_time is in milliseconds */
        snprintf(sql, sizeof sql,
                 "SELECT version, description, type, checksum::text, success, (installed_on - "
                 "coalesce(execution_time, 0) * interval '1 millisecond')::timestamptz::text, "
                 "installed_on::timestamptz::text, execution_time::float8 FROM %s "
                 "ORDER BY installed_rank",
                 table);
    else
        snprintf(sql, sizeof sql,
                 "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, "
                 "started_at::text, finished_at::text, 1000 * extract(epoch FROM finished_at - "
                 "started_at)::float8 FROM %s ORDER BY started_at, id",
                 table);
    PGresult *t = osc_exec(c, sql, 0, NULL, e, sizeof e, NULL);
    if (t == NULL) {
        snprintf(sqlstate, 6, "XX000");
        snprintf(err, errlen, "reading %s: %s", f->name, e);
        return false;
    }
    bool ok = true;
    for (int r = 0; ok && r < PQntuples(t); r++) {
        if (f->tool == OSC_TOOL_FLYWAY)
            ok = osc_foreign_flyway_row(f, val(t, r, 0), val(t, r, 1), val(t, r, 2), val(t, r, 3),
                                        PQgetvalue(t, r, 4)[0] == 't', val(t, r, 5), val(t, r, 6),
                                        num_or(t, r, 7, -1));
        else
            ok = osc_foreign_prisma_row(f, val(t, r, 0), PQgetvalue(t, r, 1)[0] == 't',
                                        PQgetvalue(t, r, 2)[0] == 't', val(t, r, 3), val(t, r, 4),
                                        num_or(t, r, 5, -1));
    }
    PQclear(t);
    if (!ok)
        fail(sqlstate, "53200", err, errlen, "out of memory", NULL);
    return ok;
}

bool osc_adopt_read(PGconn *c, const char *layout, const char *history, const char *user,
                    osc_foreign *out, char sqlstate[6], char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const tool_def *d = NULL;
    for (size_t i = 0; layout && i < sizeof tools / sizeof tools[0]; i++)
        if (strcmp(tools[i].layout, layout) == 0) {
            d = &tools[i];
            out->tool = (osc_tool)i;
        }
    if (d == NULL)
        return true;
    char e[512];
    const char *hv[] = {history};
    PGresult *h = history ? osc_exec(c, "SELECT ARRAY[$1::text]::text", 1, hv, e, sizeof e, NULL) : NULL;
    if (history && h == NULL)
        return fail(sqlstate, "XX000", err, errlen, "the history table's name: ", e);
    const char *p[] = {h ? PQgetvalue(h, 0, 0) : d->tables, d->cols, user, d->exact ? "t" : "f"};
    PGresult *t = osc_exec(c, candidates_sql, 4, p, e, sizeof e, NULL);
    PQclear(h);
    if (t == NULL)
        return fail(sqlstate, "XX000", err, errlen, "looking for the tool's history table: ", e);
    int n = PQntuples(t);
    if (n > 1) {
        char names[600] = "";
        for (int i = 0; i < n; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     PQgetvalue(t, i, 0));
        snprintf(sqlstate, 6, "55000");
        snprintf(err, errlen,
                 "%d tables look like %s's history (%s): pgcutover cannot tell which "
                 "one belongs to this directory",
                 n, d->tool, names);
        PQclear(t);
        return false;
    }
    if (n == 0) {
        PQclear(t);
        return true;
    }
    char table[300];
    snprintf(table, sizeof table, "%s", PQgetvalue(t, 0, 0));
    bool may = PQgetvalue(t, 0, 1)[0] == 't';
    PQclear(t);
    snprintf(out->name, sizeof out->name, "%s's %s", d->tool, table);
    if (!may) {
        snprintf(sqlstate, 6, "42501");
        snprintf(err, errlen, "role \"%s\" may not read %s (SELECT)", user, out->name);
        memset(out, 0, sizeof *out);
        return false;
    }
    out->found = true;
    bool ok = out->tool == OSC_TOOL_GOLANG ? read_golang(c, table, out, sqlstate, err, errlen)
                                           : read_rows(c, table, out, sqlstate, err, errlen);
    if (!ok)
        osc_foreign_free(out);
    return ok;
}

/* ---------- MIGRATE ADOPT ---------- */

/* The row key of a file: its version, or 'R__' || name for a repeatable (osc_migrate.c). */
static const char *key_of(const osc_mfile *f, char *buf, size_t len)
{
    if (f->kind != OSC_MFILE_REPEATABLE)
        return f->version;
    snprintf(buf, len, "R__%s", f->name);
    return buf;
}

/* How messages name a history entry. */
static void entry_label(const osc_fentry *e, char *out, size_t len)
{
    snprintf(out, len, e->repeatable ? "the repeatable migration R__%s" : "version %s", e->key);
}

/* Refuse a history that is mid-failure, or applied versions the directory lacks. */
static bool check_history(const osc_foreign *f, const osc_mcmd *m, osc_result *r)
{
    const char *tool = osc_foreign_tool(f);
    if (f->tool == OSC_TOOL_GOLANG) {
        if (f->has_version && f->dirty) {
            osc_result_error(r, "55000",
                             "repair the database by hand, then `migrate force` the "
                             "version it is at with golang-migrate, and adopt again",
                             "%s is dirty at version %s: a golang-migrate run failed half way "
                             "there; nothing adopted",
                             f->name, f->version);
            return false;
        }
        if (!f->has_version || f->version[0] == '-')
            return true;
        for (int i = 0; i < m->nfiles; i++)
            if (m->files[i].kind == OSC_MFILE_UP &&
                golang_cmp(m->files[i].version, f->version) == 0)
                return true;
        osc_result_error(r, "55000", "restore the file of that version in the directory",
                         "the directory lacks version %s that golang-migrate applied (%s); nothing "
                         "adopted",
                         f->version, f->name);
        return false;
    }
    for (int i = 0; i < f->n; i++) {
        const osc_fentry *e = &f->e[i];
        char label[400];
        entry_label(e, label, sizeof label);
        if (e->state == OSC_FOREIGN_FAILED) {
            osc_result_error(
                r, "55000",
                f->tool == OSC_TOOL_FLYWAY
                    ? "remove its half-done changes, run `flyway repair`, and adopt again"
                    : "fix it with `prisma migrate resolve --rolled-back` (or "
                      "--applied), and adopt again",
                "%s says %s failed; nothing adopted", f->name, label);
            return false;
        }
        if (e->state != OSC_FOREIGN_APPLIED)
            continue;
        bool have = false;
        for (int k = 0; k < m->nfiles && !have; k++) {
            const osc_mfile *mf = &m->files[k];
            if (e->repeatable)
                have = mf->kind == OSC_MFILE_REPEATABLE && strcmp(mf->name, e->key) == 0;
            else if (mf->kind == OSC_MFILE_UP)
                have = f->tool == OSC_TOOL_FLYWAY ? osc_flyway_compare(mf->version, e->key) == 0
                                                  : strcmp(mf->version, e->key) == 0;
        }
        if (!have) {
            osc_result_error(r, "55000", "restore its file in the directory",
                             "the directory lacks %s that %s applied (%s); nothing adopted", label,
                             tool, f->name);
            return false;
        }
    }
    return true;
}

/* Whether pgcutover.schema_migrations has a row for key (keys: the result of its query). */
static bool has_row(const PGresult *keys, const char *key)
{
    for (int i = 0; i < PQntuples(keys); i++)
        if (strcmp(PQgetvalue(keys, i, 0), key) == 0)
            return true;
    return false;
}

static const char insert_sql[] =
    "INSERT INTO pgcutover.schema_migrations (version, name, layout, repeatable, checksum, state, "
    "direction, statements_done, statements_total, strategies, started_at, finished_at, "
    "duration_ms, applied_by, run) VALUES ($1, $2, $3, $4::bool, $5, 'applied', 'up', $6::int, "
    "$6::int, '{adopted}', coalesce($7::timestamptz, now()), coalesce($8::timestamptz, now()), "
    "coalesce($9::float8, 1000 * extract(epoch FROM coalesce($8::timestamptz, now()) - "
    "coalesce($7::timestamptz, now()))::float8), $10, 1) RETURNING version, name, state, "
    "statements_done, array_to_string(strategies, ','), round(duration_ms::numeric, 3)";

/* Insert the adopted row of file (steps: its osc_split count); its answer row into r. */
static bool adopt_one(PGconn *c, const char *user, const osc_mcmd *m, const osc_foreign *f,
                      const osc_mfile *file, int steps, osc_result *r)
{
    char kb[300], sum[65], ns[16], dur[32], err[512], code[6] = "XX000";
    const char *key = key_of(file, kb, sizeof kb);
    const osc_fentry *e = file_entry(f, file);
    osc_migrate_checksum(file->text, sum);
    snprintf(ns, sizeof ns, "%d", steps);
    if (e && e->duration_ms >= 0)
        snprintf(dur, sizeof dur, "%.3f", e->duration_ms);
    const char *p[] = {key,
                       file->name,
                       m->layout,
                       file->kind == OSC_MFILE_REPEATABLE ? "t" : "f",
                       sum,
                       ns,
                       e ? e->started_at : NULL,
                       e ? e->finished_at : NULL,
                       e && e->duration_ms >= 0 ? dur : NULL,
                       user};
    PGresult *t = osc_exec(c, insert_sql, 10, p, err, sizeof err, code);
    if (t == NULL || PQntuples(t) != 1) {
        osc_result_error(r, code, NULL, "recording version %s as adopted: %s", key,
                         t ? "no row" : err);
        PQclear(t);
        return false;
    }
    const char *row[6];
    for (int i = 0; i < 6; i++)
        row[i] = PQgetvalue(t, 0, i);
    bool ok = osc_result_row(r, row);
    PQclear(t);
    if (!ok)
        osc_result_error(r, "53200", NULL, "out of memory");
    return ok;
}

/* Refuse a Flyway versioned file changed since Flyway applied it. */
static bool check_changed(const osc_foreign *f, const osc_mfile *file, osc_result *r)
{
    if (file->kind != OSC_MFILE_UP || osc_foreign_state(f, file) != OSC_FOREIGN_CHANGED)
        return true;
    const osc_fentry *e = file_entry(f, file);
    osc_result_error(r, "55000",
                     "restore the file as Flyway applied it; or, if the change is "
                     "meant, `flyway repair` records its new checksum",
                     "version %s (%s): %s applied it with checksum %d but the file's is %d (it "
                     "changed since; `flyway validate` refuses it too); nothing adopted",
                     file->version, file->name, f->name, e ? e->checksum : 0,
                     osc_flyway_checksum(file->text));
    return false;
}

void osc_adopt_run(PGconn *c, const char *db, const char *user, const osc_mcmd *m, osc_result *r)
{
    if (m->layout == NULL) {
        osc_result_error(r, "22023", "`pgcutover migrate adopt` sends it for you",
                         "MIGRATE ADOPT needs LAYOUT 'golang-migrate' | 'flyway' | 'prisma'");
        return;
    }
    if (!osc_migrate_lock(c, db, r))
        return;
    osc_foreign f;
    char code[6], err[1024];
    if (!osc_adopt_read(c, m->layout, m->history, user, &f, code, err, sizeof err)) {
        osc_result_error(r, code, NULL, "%s", err);
        return;
    }
    if (!f.found) {
        const tool_def *d = NULL;
        for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
            if (strcmp(tools[i].layout, m->layout) == 0)
                d = &tools[i];
        osc_result_error(r, "55000",
                         "adopt records what another tool applied; a database without "
                         "its table has nothing to adopt: use `pgcutover migrate up`",
                         "no %s history table (%s) found in database \"%s\"",
                         d ? d->tool : m->layout, m->history ? m->history : d ? d->tables : "", db);
        return;
    }
    PGresult *keys = NULL;
    int *steps = calloc((size_t)m->nfiles + 1, sizeof *steps);
    bool ok = steps != NULL && check_history(&f, m, r);
    if (steps == NULL)
        osc_result_error(r, "53200", NULL, "out of memory");
    if (ok) {
        keys = osc_exec(c, "SELECT version FROM pgcutover.schema_migrations", 0, NULL, err,
                        sizeof err, NULL);
        ok = keys != NULL;
        if (!ok)
            osc_result_error(r, "XX000", NULL, "reading pgcutover.schema_migrations: %s", err);
    }
    /* which files: applied by the tool, not recorded by pgcutover (steps[i] >= 0) */
    for (int i = 0; steps && i < m->nfiles; i++)
        steps[i] = -1;
    for (int i = 0; ok && i < m->nfiles; i++) {
        const osc_mfile *file = &m->files[i];
        char kb[300];
        if (file->kind == OSC_MFILE_DOWN)
            continue;
        if (!check_changed(&f, file, r)) {
            ok = false;
            break;
        }
        if (osc_foreign_state(&f, file) != OSC_FOREIGN_APPLIED ||
            has_row(keys, key_of(file, kb, sizeof kb)))
            continue;
        osc_script sc;
        if (!osc_split(file->text, &sc, code, err, sizeof err)) {
            osc_result_error(r, code, "fix the file; nothing adopted", "version %s (%s): %s",
                             key_of(file, kb, sizeof kb), file->name, err);
            ok = false;
            break;
        }
        steps[i] = sc.n;
        osc_script_free(&sc);
    }
    if (ok) {
        static const char *const cols[] = {"version", "name",       "state",
                                           "steps",   "strategies", "duration_ms"};
        static const uint32_t types[] = {OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT,
                                         OSC_T_INT8, OSC_T_TEXT, OSC_T_FLOAT8};
        for (int i = 0; i < 6; i++)
            osc_result_col(r, cols[i], types[i]);
        snprintf(r->tag, sizeof r->tag, "MIGRATE ADOPT");
        ok = osc_run(c, "BEGIN", 0, NULL, err, sizeof err, code);
        if (!ok)
            osc_result_error(r, code, NULL, "%s", err);
    }
    int adopted = 0;
    for (int i = 0; ok && i < m->nfiles; i++)
        if (steps[i] >= 0) {
            ok = adopt_one(c, user, m, &f, &m->files[i], steps[i], r);
            adopted += ok;
        }
    if (ok && !osc_run(c, "COMMIT", 0, NULL, err, sizeof err, code)) {
        osc_result_error(r, code, NULL, "recording the adopted versions: %s", err);
        ok = false;
    }
    if (!ok && PQtransactionStatus(c) != PQTRANS_IDLE)
        osc_run(c, "ROLLBACK", 0, NULL, NULL, 0, NULL);
    if (ok)
        osc_log(CONF_LOG_INFO, "migrate adopt: %d version%s of %s recorded as applied", adopted,
                adopted == 1 ? "" : "s", f.name);
    PQclear(keys);
    free(steps);
    osc_foreign_free(&f);
}
