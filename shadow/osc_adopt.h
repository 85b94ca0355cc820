/*
 * osc_adopt.h — adoption of another tool's migration history (issue 15): when the
 * database already has golang-migrate's, Flyway's or Prisma Migrate's tracking table,
 * `migrate status` says what that tool applied and `migrate adopt DIR` records those
 * versions in pgcutover.schema_migrations as applied, without running them.
 *
 * What each tool records, and how it is read here (checked against their sources):
 *
 * golang-migrate (database/postgres/postgres.go): `schema_migrations (version bigint not
 *   null primary key, dirty boolean not null)` in current_schema() (or the schema/name
 *   of x-migrations-table); SetVersion truncates it and inserts one row, so it holds the
 *   current version only (none when every version was reverted). Every version ≤ it is
 *   applied. dirty = true: the run that set it failed half way (on up: that version; on
 *   down: the version after it) — golang-migrate itself refuses to go on until `migrate
 *   force`. Found: a table named schema_migrations, in any schema but pgcutover's own
 *   (pgcutover.schema_migrations) and the system ones, with exactly those two columns
 *   and types (Rails' schema_migrations, a varchar, is not it). A renamed table
 *   (x-migrations-table=other) is found when named: `--history-table other`.
 *
 * Flyway (MigrationInfoServiceImpl, MigrationInfoImpl, CoreMigrationType,
 *   ChecksumCalculator): `flyway_schema_history` (installed_rank, version, description,
 *   type, script, checksum, installed_by, installed_on, execution_time, success), in any
 *   schema; before Flyway 5 the same table was named schema_version (both are looked
 *   for; flyway.table renames it: `--history-table`). Rows in installed_rank order; per version (compared as osc_flyway_compare) the
 *   latest row decides: success → applied; success false → failed; a successful UNDO_*
 *   row → undone, a successful DELETE row (`flyway repair` of a removed file) → deleted:
 *   both not applied. A row of a baseline type (BASELINE, SQL_BASELINE, …) or described
 *   '<< Flyway Baseline >>' makes every version ≤ its version applied ("migrate ignores
 *   all migrations up to and including the baseline version"); SCHEMA rows are ignored.
 *   Repeatables (version NULL) are keyed by description (the file's name with '_' shown
 *   as ' ', as the client sends it): the latest row decides, and a successful one counts
 *   as applied only while its checksum equals the file's Flyway checksum (else Flyway
 *   calls it outdated and re-applies it). A versioned file whose checksum differs from
 *   the applied row's is what `flyway validate` refuses: reported as changed.
 *
 * Prisma Migrate (schema-engine's _prisma_migrations): one row per attempt (id, checksum,
 *   finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count),
 *   in any schema (the URL's ?schema=, default public). A migration (by migration_name,
 *   the directory name, which the client sends as the version) is failed when a row has
 *   finished_at and rolled_back_at both NULL (Prisma's P3009: a failed or unfinished
 *   attempt, cleared by `migrate resolve`), else applied when a row has finished_at set
 *   and rolled_back_at NULL. No checksum check (`prisma migrate deploy` makes none).
 *
 * Several tables that fit one tool are refused (55000, naming them): pgcutover cannot
 * tell which one belongs to the directory.
 */
#ifndef OSC_ADOPT_H
#define OSC_ADOPT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_migrate_cmd.h"
#include "osc_result.h"

typedef enum { OSC_TOOL_GOLANG, OSC_TOOL_FLYWAY, OSC_TOOL_PRISMA } osc_tool;

/* What a tool's history says of one file. */
typedef enum {
    OSC_FOREIGN_NOT,     /* not applied (never, undone, deleted, above the current version) */
    OSC_FOREIGN_APPLIED, /* applied */
    OSC_FOREIGN_FAILED,  /* failed half way: golang-migrate dirty, Flyway success = false,
                          * Prisma unfinished and not rolled back */
    OSC_FOREIGN_CHANGED, /* Flyway applied it with another checksum than the file's: a
                          * versioned file changed since (Flyway's validate refuses it), or
                          * a repeatable that Flyway would re-apply (outdated) */
} osc_foreign_state_t;

/* One version (or Flyway repeatable) the history knows. Strings malloc'ed. */
typedef struct {
    char *key;                 /* Flyway: version ("1.1") or, for a repeatable, its description;
                                * Prisma: migration_name */
    bool repeatable;           /* Flyway version NULL */
    osc_foreign_state_t state; /* OSC_FOREIGN_NOT, _APPLIED or _FAILED (never _CHANGED) */
    bool has_checksum;         /* Flyway: checksum not NULL */
    int32_t checksum;          /* Flyway's CRC-32 as it stores it (a signed int) */
    char *started_at;          /* timestamptz text of this session, or NULL */
    char *finished_at;
    double duration_ms; /* < 0: unknown */
} osc_fentry;

typedef struct {
    bool found; /* a table of the tool exists (false: the rest is empty) */
    osc_tool tool;
    char name[400]; /* "golang-migrate's public.schema_migrations" */
    /* golang-migrate */
    bool has_version; /* a row (version may be -1 only when dirty) */
    char version[24]; /* its version as decimal text */
    bool dirty;
    /* Flyway / Prisma */
    osc_fentry *e; /* n entries, in the order first seen (installed_rank / started_at) */
    int n, cap;
    bool has_baseline; /* Flyway: every version <= baseline counts as applied */
    char baseline[64];
} osc_foreign;

/*
 * osc_adopt_read — read the history of layout's tool ("golang-migrate", "flyway",
 * "prisma" — MIGRATE's LAYOUT) in c's database into *out (zeroed first; found = false
 * when no table of the tool exists, or layout is NULL or another name). The table is the
 * tool's own name (Flyway: flyway_schema_history, or schema_version of Flyway before 5),
 * or history when not NULL (MIGRATE's HISTORY: golang-migrate's x-migrations-table,
 * Flyway's flyway.table), with the tool's columns either way. user (the console user)
 * must be allowed to SELECT the table. On success the caller frees *out with
 * osc_foreign_free. false with a SQLSTATE and err (errlen bytes), *out empty: 55000
 * several candidate tables (named) or a golang-migrate table with more than one row,
 * 42501 user may not read it, XX000 a query failed, 53200 out of memory.
 */
bool osc_adopt_read(PGconn *c, const char *layout, const char *history, const char *user, osc_foreign *out,
                    char sqlstate[6], char *err, size_t errlen);

/* osc_foreign_free — release *f's entries; *f is zeroed. Safe on a zeroed struct. */
void osc_foreign_free(osc_foreign *f);

/* osc_foreign_name — "golang-migrate's public.schema_migrations" (f's own storage); ""
 * when not found. */
const char *osc_foreign_name(const osc_foreign *f);

/* osc_foreign_tool — "golang-migrate", "Flyway", "Prisma" (static) as messages name it. */
const char *osc_foreign_tool(const osc_foreign *f);

/*
 * osc_foreign_state — what the history f says of file (an UP or REPEATABLE file of the
 * MIGRATE command; a DOWN file, or f not found: OSC_FOREIGN_NOT). golang-migrate:
 * versions compared as unsigned numbers of any length ("01" == "1"); Flyway: as
 * osc_flyway_compare, repeatables by name == description, with osc_flyway_checksum of
 * the file's text; Prisma: version == migration_name. Pure code.
 */
osc_foreign_state_t osc_foreign_state(const osc_foreign *f, const osc_mfile *file);

/*
 * osc_foreign_flyway_row / osc_foreign_prisma_row — fold one history row into f (rows in
 * installed_rank / started_at order; f->tool set by the caller), by the rules at the top.
 * version NULL = a Flyway repeatable; checksum NULL = none; started/finished may be NULL;
 * duration_ms < 0 unknown. false on out of memory. Pure code: osc_adopt_read uses them,
 * the unit test feeds them.
 */
bool osc_foreign_flyway_row(osc_foreign *f, const char *version, const char *description,
                            const char *type, const char *checksum, bool success,
                            const char *started, const char *finished, double duration_ms);
bool osc_foreign_prisma_row(osc_foreign *f, const char *migration_name, bool finished,
                            bool rolled_back, const char *started, const char *finished_at,
                            double duration_ms);

/*
 * osc_flyway_compare — <0, 0, >0 as Flyway's MigrationVersion orders versions a and b:
 * parts separated by '.' or '_', each compared as a number of any length (leading zeros
 * ignored), a missing part counts as 0 (so "1.0" == "1", "1_2" == "1.2", "1.10" > "1.9").
 * Text that is not digits compares byte-wise after the numbers, so any two strings order.
 * Pure code.
 */
int osc_flyway_compare(const char *a, const char *b);

/*
 * osc_flyway_checksum — the checksum Flyway records for an SQL migration of this text
 * (ChecksumCalculator): CRC-32 (zlib's polynomial) of the UTF-8 bytes of its lines
 * without their line breaks (every '\r' and '\n' left out) and without a leading UTF-8
 * byte order mark, as a signed 32-bit int. Assumes valid UTF-8 (Java would read invalid
 * bytes as U+FFFD). Pure code.
 */
int32_t osc_flyway_checksum(const char *text);

/*
 * osc_adopt_run — MIGRATE ADOPT for console user `user` on c (a connection to db; the
 * MIGRATE command's own): under the runner lock of `migrate up` (osc_migrate_lock), read
 * the history of m->layout's tool and, for every UP/REPEATABLE file of m it says applied
 * and pgcutover.schema_migrations has no row for (any row wins: pgcutover's own record,
 * even 'reverted' or 'failed', is newer than the other tool's), insert the row applied:
 * direction up, checksum osc_migrate_checksum(text), statements_done = statements_total
 * = its steps (osc_split), strategies {adopted}, applied_by user, run 1, started/finished
 * from the history when it has them (else now()). All in one transaction. Answers one row
 * per version adopted, as UP does (version, name, state 'applied', steps, strategies
 * 'adopted', duration_ms). Errors, nothing adopted: 55000 no table of the tool, a dirty
 * golang-migrate version, a failed Flyway/Prisma version, a Flyway versioned file changed
 * since it was applied, a version the tool applied that the directory lacks (golang-
 * migrate: its current version), several candidate tables; 55P03 another runner; 42601 a
 * file pgcutover cannot split; 22023 no LAYOUT; 42501 user may not read the table.
 */
void osc_adopt_run(PGconn *c, const char *db, const char *user, const osc_mcmd *m, osc_result *r);

#endif
