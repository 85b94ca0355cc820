/*
 * cli_migrate_dir.h — read a migration directory as golang-migrate, Flyway or Prisma
 * Migrate lays it out, for `pgcutover migrate` (issue 15). Filesystem only: it lists
 * and names the files; the engine reads and runs them.
 *
 * What each tool does, and what is followed here (checked against their sources):
 *
 * golang-migrate (source/parse.go, source/migration.go, source/iofs/iofs.go): a file
 *   matching ^([0-9]+)_(.*)\.(up|down)\.(.*)$ — version digits parsed with
 *   strconv.ParseUint(…, 10, 64), title = what lies between the first '_' and the
 *   direction; ordered by that number; a second file with the same version and
 *   direction is an error; subdirectories are skipped and names that do not match are
 *   ignored. Followed, for the extension "sql" only: {version}_{title}.up.sql /
 *   .down.sql; version kept as written ("0001") but compared as an unsigned 64-bit
 *   number, so 1 < 2 < 10 and "01" == "1" (two ups or two downs of one number are an
 *   error naming both); a version over 2^64-1 is an error; a title may be empty or hold
 *   anything, dots and spaces included. Stricter than golang-migrate: a down without an
 *   up is an error (golang-migrate would apply nothing and move the version on). Like
 *   it, subdirectories are not read. Unlike it, a file such as 1_a.up.txt is not a
 *   migration (golang-migrate reads any extension; pgcutover reads .sql only).
 *
 * Flyway (MigrationVersion, ResourceNameParser, ResolvedMigrationComparator): versioned
 *   V{version}__{description}.sql, undo U{version}__{description}.sql (Teams edition),
 *   repeatable R__{description}.sql; prefixes and the suffix are case-sensitive; the
 *   version/description separator is the first "__" (V1.sql, without it, is version 1
 *   with an empty description); '_' in a version reads as '.', each part between dots
 *   is digits compared as a number of any size (BigInteger), a missing trailing part
 *   is 0 (1.0 == 1, 1_2 == 1.2, 1.1 < 1.10 < 2); two versioned files of equal versions
 *   are an error (Flyway: "Found more than one migration with version"); the
 *   description is shown with '_' as ' '; repeatables come after every versioned one,
 *   ordered by description (Java String.compareTo: UTF-16 code units, reproduced here);
 *   two repeatables with the same description are an error. Locations are scanned
 *   recursively, so in a Flyway directory non-hidden subdirectories are read too
 *   (paths keep the subdirectory). Followed, with these differences: version is kept
 *   as written ("1_2"; Flyway records "1.2" in flyway_schema_history — compare with
 *   cli_md_compare, not strcmp); a version with a sign ("-1", which BigInteger takes)
 *   fits no layout; an undo needs a versioned file of an equal version; SQL callbacks
 *   (beforeMigrate.sql, afterEachMigrate__x.sql, …) and baseline migrations (B1__x.sql)
 *   are refused with what they are rather than ignored or run; per-script .sql.conf
 *   files are ignored.
 *
 * Prisma Migrate (schema-engine migrations_directory.rs list_migrations; the CLI's
 *   listMigrations.ts): every subdirectory is a migration whose id is its name
 *   ({timestamp}_{name}, timestamp %Y%m%d%H%M%S), applied in lexicographic order of
 *   that name; its script is migration.sql; files at the top (migration_lock.toml) are
 *   not migrations. Followed: subdirectories named {digits}_{name} holding a regular
 *   migration.sql, ordered by byte-wise comparison of the directory name (the engine's
 *   Rust str order; newer CLIs sort with localeCompare, which agrees on the names
 *   Prisma generates — same-length timestamps — and differs only for names equal up to
 *   case or punctuation at one timestamp). version is the whole directory name
 *   ("20240101120000_init", Prisma's migration_name, unique even when two share a
 *   timestamp); name is the part after the first '_'. A subdirectory not named
 *   {digits}_{name}, or without migration.sql, is an error naming it (Prisma would
 *   apply the first and fail on the second). No down.
 *
 * Detection, from the names at the top of the directory: a .sql file that golang-
 * migrate or Flyway would take, or a subdirectory named {digits}_{name}, sets the
 * layout; names of two layouts are an error naming one of each. When the top holds
 * none, subdirectories are searched for Flyway files (a Flyway project may keep every
 * file in subfolders); found, the layout is Flyway; else the directory is an empty
 * golang-migrate one (n = 0). Hidden entries (names starting with '.') are skipped
 * everywhere; other regular files that are not .sql (README.md, migration_lock.toml)
 * are ignored; a .sql file that fits no layout is an error naming it. Entries are
 * sorted by name before any check, so which file an error names never depends on
 * readdir order. Symbolic links are followed (subdirectories at most 16 deep).
 */
#ifndef CLI_MIGRATE_DIR_H
#define CLI_MIGRATE_DIR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { CLI_MD_GOLANG, CLI_MD_FLYWAY, CLI_MD_PRISMA } cli_md_layout;

typedef struct {
    char *version;   /* as written in the name: "20240101120000", "1.2.3", "0001";
                      * Prisma: the directory name; "" for a Flyway repeatable */
    char *name;      /* the title/description as the tool shows it (golang-migrate: as
                      * written; Flyway: '_' shown as ' '; Prisma: after the first '_') */
    char *up_path;   /* path of the file that applies it: DIR "/" golang .up.sql, Flyway
                      * V/R file (with its subdirectories), Prisma DIR/dir/migration.sql */
    char *down_path; /* golang .down.sql or Flyway U file; NULL when none (always NULL
                      * for Prisma and R__) */
    bool repeatable; /* Flyway R__ */
} cli_md_version;

typedef struct {
    cli_md_layout layout;
    cli_md_version *v; /* n entries, malloc'ed; NULL when n == 0 */
    int n;
} cli_md_dir;

/*
 * cli_md_read — read migration directory dir (a path; no trailing '/' needed) into
 * *out: its layout and every migration, versioned ones in the tool's order
 * (cli_md_compare), then Flyway repeatables ordered by description. Every string of
 * *out is malloc'ed and owned by *out: free it with cli_md_free. File contents are not
 * read (cli_md_read_file does).
 *
 * Returns false with err (errlen bytes, truncated) saying why and naming the file or
 * directory, and *out empty (n = 0, v = NULL; cli_md_free on it is harmless), when:
 * dir cannot be opened or read (with strerror); a .sql file fits no layout; layouts
 * are mixed; two files have one version (and direction), naming both; a down/undo has
 * no up; a golang-migrate version exceeds 2^64-1; a Prisma directory is misnamed or
 * lacks migration.sql; a Flyway callback or baseline migration is present;
 * subdirectories nest deeper than 16; memory runs out. An empty directory is no error:
 * layout CLI_MD_GOLANG, n = 0.
 */
bool cli_md_read(const char *dir, cli_md_dir *out, char *err, size_t errlen);

/* cli_md_free — free everything *d owns and leave it empty (n = 0, v = NULL). d may be
 * NULL; calling it twice is harmless. */
void cli_md_free(cli_md_dir *d);

/*
 * cli_md_compare — <0, 0 or >0 as layout's tool orders versions a and b (strings as
 * cli_md_read fills cli_md_version.version):
 *   golang-migrate: as unsigned numbers of any length ("01" == "1", "9" < "10");
 *   Flyway: part by part as numbers, '_' read as '.', a missing part as 0
 *     ("1.1" < "1.10" < "2", "1_2" == "1.2", "1.0" == "1"); "" (a repeatable) comes
 *     after every version;
 *   Prisma: byte-wise (strcmp) on the directory name.
 * Strings that are not such versions still compare deterministically (non-digits
 * byte-wise after the numeric parts), so it can sort user input such as --to values.
 */
int cli_md_compare(cli_md_layout layout, const char *a, const char *b);

/* cli_md_find — index in d of the versioned (non-repeatable) entry whose version
 * compares equal to version (so "01" finds golang-migrate 1 and "1.2" finds Flyway
 * V1_2), or -1. */
int cli_md_find(const cli_md_dir *d, const char *version);

/* cli_md_layout_name — "golang-migrate", "flyway", "prisma" (static strings); "?" for
 * a value outside the enum. */
const char *cli_md_layout_name(cli_md_layout layout);

/*
 * cli_md_read_file — the whole file at path into *text (malloc'ed, NUL-terminated
 * after *len bytes; it may hold NULs of its own; the caller frees it). An empty file
 * gives "" and 0. On failure returns false, *text = NULL, *len = 0 and err names the
 * path with strerror (a directory is refused: EISDIR).
 */
bool cli_md_read_file(const char *path, char **text, size_t *len, char *err, size_t errlen);

#endif
