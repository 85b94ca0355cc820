/*
 * osc_warn.h — what PLAN shows besides the steps' SQL (issue 13): the rows themselves
 * (step, phase, description, sql, lock, client_wait), the lock each step takes on the
 * table (PostgreSQL's mode names, "Explicit Locking" table 13.2) and how long clients can
 * wait for it, an estimate of the time from the table's size, and warnings with a stable
 * rule id (PGC001 …, listed in README.md under "Strategies"), in the vocabulary of
 * strong_migrations / squawk and the expand/contract pattern.
 */
#ifndef OSC_WARN_H
#define OSC_WARN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "osc_plan.h"
#include "osc_result.h"

/* The rules PLAN can warn about; osc_warn_rules() has their ids and texts. */
typedef enum {
    OSC_WARN_DESTRUCTIVE,      /* PGC001: DROP COLUMN / DROP TABLE loses data */
    OSC_WARN_INCOMPATIBLE,     /* PGC002: RENAME, DROP COLUMN, a type change break running code */
    OSC_WARN_VOLATILE_DEFAULT, /* PGC003: ADD COLUMN … DEFAULT <volatile> rewrites the table */
    OSC_WARN_NARROWING,        /* PGC004: a type change that may fail or lose data */
    OSC_WARN_FK_NO_INDEX,      /* PGC005: a new FOREIGN KEY without an index on its columns */
    OSC_WARN_LARGE_DML,        /* PGC006: an unbatched UPDATE/DELETE over many rows */
    OSC_WARN_NRULES
} osc_warn_rule;

typedef struct {
    const char *id;      /* "PGC001" */
    const char *name;    /* "destructive": what the warning row says after the id */
    const char *trigger; /* what triggers it (README's table) */
    const char *advice;  /* what to do, appended to every warning of the rule */
} osc_warn_rule_def;

/* osc_warn_rules — the rule table (static; *n gets OSC_WARN_NRULES). */
const osc_warn_rule_def *osc_warn_rules(int *n);

/* osc_warn_add — append "<id> <name>: <detail>; <advice>" (detail from fmt) to
 * p->warnings (malloc'ed, freed by osc_plan_free); dropped beyond OSC_MAX_WARNINGS. */
void osc_warn_add(osc_plan *p, osc_warn_rule rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * osc_warn_trial — inside the trial's transaction, after the ALTER ran on the shadow
 * shadow_rel (quoted, qualified) whose first nbefore columns are the original's: asks the
 * catalog for PGC003 (a column added with a default whose expression calls a volatile
 * function: the function oids in pg_attrdef.adbin's expression tree, pg_proc.provolatile)
 * and PGC005 (a FOREIGN KEY the original (p->table_oid) has no constraint of that name
 * for, with no index on the shadow whose leading columns are its columns) and adds them
 * to p. false with *r filled on a catalog error (the transaction is then aborted).
 */
bool osc_warn_trial(PGconn *c, osc_plan *p, const char *shadow_rel, int nbefore, osc_result *r);

/* PLAN's rows: osc_warn_begin adds the columns step, phase, description, sql, lock,
 * client_wait to r; each osc_warn_row then one row numbered in order. Any text may be
 * NULL (SQL NULL). lock: a mode name (osc_warn_lock_name) with, at most, a parenthesised
 * remark; client_wait: "none" or the bound (osc_warn_held_wait). */
typedef struct {
    osc_result *r;
    int step;
} osc_warn_out;
void osc_warn_begin(osc_warn_out *o, osc_result *r);
void osc_warn_row(osc_warn_out *o, const char *phase, const char *description, const char *sql,
                  const char *lock, const char *client_wait);
/* osc_warn_rows — one "warning" row for each of p's warnings. */
void osc_warn_rows(osc_warn_out *o, const osc_plan *p);
/* osc_warn_direct_rows — PGC001 (DROP TABLE) and PGC002 (ALTER TABLE … RENAME TO) of a
 * direct statement, from its parse tree (osc_stmt_direct_facts), as warning rows of o. */
void osc_warn_direct_rows(osc_warn_out *o, const char *sql);

/* osc_warn_lock_name — "ACCESS EXCLUSIVE" … for an OSC_LOCK_* level, "none" for 0. */
const char *osc_warn_lock_name(int level);
/* osc_warn_stmt_lock — the strongest lock of s's subcommands (OSC_LOCK_*). */
int osc_warn_stmt_lock(const osc_stmt *s);

/* osc_warn_held_wait — client_wait of a statement run under the proxy's hold (osc_run_locked):
 * "up to <lock_timeout_ms> ms per attempt × <cutover_attempts> attempts …" into buf. */
void osc_warn_held_wait(const conf_t *s, char *buf, size_t len);

/* How a strategy's time grows with the table (osc_warn_estimate). */
typedef enum {
    OSC_EST_CATALOG, /* instant, direct, DROP INDEX: milliseconds whatever the size */
    OSC_EST_COPY,    /* rows at max_rows_per_second, at most OSC_EST_COPY_ROWS_PER_S */
    OSC_EST_SCAN,    /* VALIDATE CONSTRAINT: one read of the table's bytes */
    OSC_EST_BUILD,   /* CREATE INDEX / REINDEX CONCURRENTLY: two reads of the table's bytes */
} osc_est_kind;

/* The assumed rates of the estimate (README "Strategies"): rows per second a backfill
 * copies when max_rows_per_second does not cap it lower, and MB (10^6 bytes) per second a
 * scan of the table reads. */
#define OSC_EST_COPY_ROWS_PER_S 50000
#define OSC_EST_SCAN_MB_PER_S 100

/*
 * osc_warn_estimate — the "estimate" row: the time the strategy's work on table oid (text;
 * "0" or NULL for none) takes, from rows (the plan's rows_estimated; COPY) or the table's
 * bytes (pg_relation_size; SCAN, BUILD), with how it was computed; for COPY also the extra
 * disk the shadow needs (pg_total_relation_size). The row's description starts with
 * "about <n> ms|s|min|h" or "milliseconds". A catalog error leaves the bytes 0.
 */
void osc_warn_estimate(osc_warn_out *o, PGconn *c, const char *oid, osc_est_kind kind,
                       int64_t rows, const conf_t *s);

#endif
