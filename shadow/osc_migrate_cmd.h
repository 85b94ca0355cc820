/*
 * osc_migrate_cmd.h — the console's MIGRATE command as plain data (issue 15). The
 * `pgcutover migrate` client reads a migration directory and sends, in one simple Query:
 *
 *   MIGRATE UP|DOWN|STATUS|PLAN|ADOPT [LAYOUT 'name'] [TO 'version'] [STEPS n]
 *           [ACCEPT 'version' ...] [REVERT] [ACCEPT DATA LOSS] [HISTORY 'table']
 *   FILE UP|DOWN|REPEATABLE 'version' 'name' $tag$<the file's text>$tag$
 *   FILE ...
 *
 * Strings are SQL literals ('' for a quote) or dollar-quoted ($tag$ … $tag$, the tag
 * chosen by the sender so that the text cannot end it — "Dollar-Quoted String
 * Constants", 4.1.2.4). Files come in the order of their layout's tool (the client sorts
 * them); the engine keeps that order. Keywords are case-insensitive. Pure code.
 */
#ifndef OSC_MIGRATE_CMD_H
#define OSC_MIGRATE_CMD_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { OSC_MIG_UP, OSC_MIG_DOWN, OSC_MIG_STATUS, OSC_MIG_PLAN, OSC_MIG_ADOPT } osc_mig_verb;
typedef enum { OSC_MFILE_UP, OSC_MFILE_DOWN, OSC_MFILE_REPEATABLE } osc_mfile_kind;

typedef struct {
    osc_mfile_kind kind;
    char *version; /* "" for a repeatable */
    char *name;
    char *text;    /* the file, as sent */
} osc_mfile;

typedef struct {
    osc_mig_verb verb;
    char *layout;   /* "golang-migrate", "flyway", "prisma"; NULL when not given */
    char *history;  /* HISTORY: the other tool's history table's name (golang-migrate's
                     * x-migrations-table, Flyway's flyway.table); NULL = the tool's own */
    char *to;       /* TO: stop after (up) / down to but not including (down) this version */
    long steps;     /* STEPS: at most this many versions; 0 = not given */
    char **accept;  /* ACCEPT: versions whose changed checksum is accepted (drift) */
    int naccept;
    bool revert;    /* REVERT: DOWN by REVERT MIGRATION of each step instead of the down file */
    bool accept_loss; /* ACCEPT DATA LOSS: a REVERT may drop columns the version added */
    osc_mfile *files;
    int nfiles;
} osc_mcmd;

/*
 * osc_mcmd_parse — read cmd (the whole Query text, starting with MIGRATE) into *out
 * (zeroed first). false with err ("MIGRATE: …, at byte N") on a syntax error; *out is
 * then freed. On success the caller frees with osc_mcmd_free.
 */
bool osc_mcmd_parse(const char *cmd, osc_mcmd *out, char *err, size_t errlen);

/* osc_mcmd_free — release everything *m holds; *m is zeroed. */
void osc_mcmd_free(osc_mcmd *m);

/* osc_mcmd_is — whether cmd is a MIGRATE command (its first word). */
bool osc_mcmd_is(const char *cmd);

#endif
