/*
 * h_engine.h — helpers shared by the engine integration tests (test_engine_*.c,
 * test_run_cli.c): a per-test context (database, pgcutover processes, connections kept
 * until the teardown), console and direct connections, formatted SQL helpers, console
 * commands that must succeed or fail, SHOW MIGRATION rows and polling for a state, and
 * a pgbench load of back-to-back checked runs (h_pgbench_*, test_migrate_load).
 *
 * Failures go through h_eng_fail, which first prints diagnostics: the test's
 * h_eng_fail_hook when set, else the tail of the pgcutover logs of the context last
 * given to h_eng_setup_db. None of these helpers may be called from a client thread
 * (cmocka is not thread-safe).
 */
#ifndef PGC_H_ENGINE_H
#define PGC_H_ENGINE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

#define H_ENG_MAX_CONNS 8

/* A test's context: its database, up to two pgcutover processes and the connections
 * it keeps open (PQfinish'ed by h_eng_stop_proxy / h_eng_teardown). */
typedef struct {
    char db[64];
    double started_ms; /* h_now_ms() at h_eng_setup_db, for the teardown's timing line */
    h_proxy px, px2;
    PGconn *conns[H_ENG_MAX_CONNS];
    int nconns;
} h_eng;

/* h_quiet_notice — a PQsetNoticeProcessor callback that drops every notice. */
void h_quiet_notice(void *arg, const char *message);

/* h_eng_fail_hook — when not NULL, h_eng_fail calls it (instead of printing the
 * context's pgcutover logs) before failing; set by a test with other diagnostics. */
extern void (*h_eng_fail_hook)(void);
/* h_dump_log — print the last `lines` lines of p's log to stderr (nothing if no log). */
void h_dump_log(const h_proxy *p, int lines);
/* h_eng_fail — print diagnostics (see above), then fail the test with the message. */
void h_eng_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* h_eng_setup_db — zero e, name its database db, start its clock, DROP and CREATE the
 * database (direct connection) and make e the context whose logs h_eng_fail prints.
 * Returns 0 (for use as a cmocka setup's return value). */
int h_eng_setup_db(h_eng *e, const char *db);
/* h_eng_teardown — close e's kept connections, stop its pgcutover processes still
 * running (status ignored), drop its database, print the test's duration, zero e. */
void h_eng_teardown(h_eng *e);

/* h_eng_keep — remember c in e (up to H_ENG_MAX_CONNS, further ones are not kept) so
 * the teardown closes it. Returns c; e owns it from then on. */
PGconn *h_eng_keep(h_eng *e, PGconn *c);
/* h_eng_drop_conn — forget c in e (if kept) and PQfinish it. */
void h_eng_drop_conn(h_eng *e, PGconn *c);
/* h_eng_stop_proxy — close e's kept connections (an open console session delays a
 * SIGTERM shutdown until it ends), then stop p: fails unless it exits with status 0. */
void h_eng_stop_proxy(h_eng *e, h_proxy *p);

/* h_eng_case — the context of the engine test files that run one database per case with
 * h_eng_case_setup/h_eng_case_teardown (cmocka prestate = the database's name). */
extern h_eng h_eng_case;
/* h_eng_case_setup — h_eng_setup_db(&h_eng_case, *state); returns 0. */
int h_eng_case_setup(void **state);
/* h_eng_case_teardown — h_eng_teardown(&h_eng_case); returns 0. */
int h_eng_case_teardown(void **state);
/* H_ENG_CASE — a cmocka test fn run in its own database db (h_eng_case). */
#define H_ENG_CASE(fn, db)                                                                         \
    cmocka_unit_test_prestate_setup_teardown(fn, h_eng_case_setup, h_eng_case_teardown, (void *)db)

/* h_eng_stop_group_proxy — stop a test group's pgcutover p (SIGTERM); fails the test,
 * with the tail of its log, unless it exits with status 0. */
void h_eng_stop_group_proxy(h_proxy *p);

/* h_direct_connect — a direct superuser connection to database db, notices dropped;
 * fails the test on error. The caller PQfinish'es it. */
PGconn *h_direct_connect(const char *db);
/* h_console_connect — a connection to the control console on control_port for database
 * db, notices dropped. h_proxy_start waits for the client port only and the console
 * listener may come up a few ms later, so a refused connection is retried (5 s); fails
 * the test after that. The caller PQfinish'es it. */
PGconn *h_console_connect(int control_port, const char *db);
/* h_eng_direct / h_eng_console — the same for e's database, kept in e (e owns them). */
PGconn *h_eng_direct(h_eng *e);
PGconn *h_eng_console(h_eng *e, const h_proxy *p);

/* h_qint — h_query_int of the formatted SQL (first column of the first row; fails on an
 * error or a NULL/no row). */
long long h_qint(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* h_qtext — first value of the formatted query as text into out (len bytes; "" for NULL
 * or no row); fails on an error. Returns out. */
const char *h_qtext(PGconn *c, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* h_execf — run the formatted SQL; fails unless it succeeds. */
void h_execf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* h_ctl_ok — a console command that must succeed (else h_eng_fail "console '…': …").
 * Returns the result; the caller PQclear's it. */
PGresult *h_ctl_ok(PGconn *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* h_ctl_err — a console command that must fail: copies its SQLSTATE into sqlstate and,
 * when msg is not NULL, its primary message into msg (msglen bytes). */
void h_ctl_err(PGconn *ctl, const char *cmd, char sqlstate[6], char *msg, size_t msglen);
/* h_col — the number of column `name` in r; fails when r has no such column. */
int h_col(const PGresult *r, const char *name);

/* h_start_migration — ALTER TABLE … (sql) on the console: checks the answer is one row
 * with columns id, table and state, id > 0, table and state not empty and a state other
 * than failed/aborted.
 * Returns the migration id. */
long long h_start_migration(PGconn *ctl, const char *sql);

/* One SHOW MIGRATION n row (text columns truncated to their buffers; attempts -1 and
 * the cutover times NAN when NULL). */
typedef struct {
    char state[32];
    char phase[1024];
    long long rows_copied, rows_estimated;
    char throttle[256];
    char shadow[256]; /* shadow_table */
    char old_table[256];
    char error[1024];
    char checkpoint[256];
    char settings[1024];
    char phase_at[1024];
    long long attempts;                   /* cutover_attempts */
    double hold_ms, lock_ms, max_wait_ms; /* cutover_hold_ms, _lock_ms, _max_wait_ms */
} h_mig;

/* h_plan_strategy — the strategy `PLAN sql` reports (the word before ':' in the
 * description of its "strategy" row; "" when none) into out (len bytes). */
void h_plan_strategy(PGconn *ctl, const char *sql, char *out, size_t len);
/* h_mig_show — SHOW MIGRATION id into *m; fails unless the console answers one row. */
void h_mig_show(PGconn *ctl, long long id, h_mig *m);
/* h_mig_terminal — whether state is failed or aborted. */
bool h_mig_terminal(const char *state);
/* h_mig_wait — poll SHOW MIGRATION id every 100 ms until its state is `want` (*m holds
 * the last row). Fails on failed/aborted (unless wanted), when waiting for done on a
 * cutover that gave up (back in ready with "cutover failed" in phase), when min_rows >=
 * 0 and rows_copied is below it, and after timeout_ms. */
void h_mig_wait(PGconn *ctl, long long id, const char *want, long long min_rows, int timeout_ms,
                h_mig *m);

/* ---- a pgbench load through a pgcutover (test_migrate_load and the pgbench tests) ---- */

/* h_pgbench_init — pgbench -i -s scale -q into database db, straight to PostgreSQL (the
 * tables the load works on; not part of what is tested). Fails the test, with pgbench's
 * output, unless it exits 0. */
void h_pgbench_init(const char *db, int scale);

/* pgbench TPC-B-like (-n, so pgbench_history keeps every transaction) as back-to-back
 * runs of `seconds` each, through port. Fill the first block, then h_pgbench_start. */
typedef struct {
    const char *db;        /* database */
    int port;              /* the proxy's listen_port */
    const char *mode;      /* -M: simple, extended or prepared */
    int clients, jobs, seconds;
    const char *dir;       /* run n writes dir/pgbench-<db>-<n>.out and .err */
    long long min_processed; /* a clean run processed at least this many (0: 1) */
    int progress;          /* -P progress (seconds, on stderr) when > 0 */
    /* filled by the helpers */
    pid_t pid;             /* the run going on, 0 when none */
    int runs;              /* runs started */
    double started_ms;     /* h_now_ms() at the start of the current (or last) run */
    int checked;           /* runs ended and found clean */
    long long processed;   /* transactions of the checked runs */
    double tps_min, tps_max, tps_sum; /* pgbench's "tps = …" of the checked runs */
    char out[512], err[512];          /* output files of the current (or last) run */
} h_pgbench;

/* h_pgbench_start — start run ++b->runs in the background (h_spawn; the database given
 * as "dbname=… sslmode=disable"). Fails the test when it cannot fork. */
void h_pgbench_start(h_pgbench *b);
/* h_pgbench_running — whether the current run still goes (cheap: waitpid WNOHANG). When
 * it has ended it is reaped and checked (h_pgbench_check) first; false when none. */
bool h_pgbench_running(h_pgbench *b);
/* h_pgbench_tick — when the current run has ended: check it (h_pgbench_check) and start
 * the next. Cheap (waitpid WNOHANG); call it often while something else goes on. */
void h_pgbench_tick(h_pgbench *b);
/* h_pgbench_finish — wait (up to bound_ms) for the current run to end and check it; no
 * new run is started. */
void h_pgbench_finish(h_pgbench *b, int bound_ms);
/* h_pgbench_finish_aborted — for a run that must FAIL: wait (up to bound_ms) for the
 * current run to end; fails the test (with its output) unless pgbench exited with a
 * non-zero status and exactly b->clients "aborted" lines name `why` (every client
 * aborted on it). Not added to the checked runs. */
void h_pgbench_finish_aborted(h_pgbench *b, int bound_ms, const char *why);
/* h_pgbench_check — the verdict of the ended current run (wait status st), through
 * h_eng_fail with its output: it must exit 0, print "number of failed transactions: 0 "
 * and "number of transactions actually processed" of at least min_processed (1), and no
 * client may abort or see an ERROR. Adds its transactions and tps to b. */
void h_pgbench_check(h_pgbench *b, int st);
/* h_pgbench_stop — stop a run still going (SIGTERM, SIGKILL after 5 s), unchecked: for
 * teardowns. */
void h_pgbench_stop(h_pgbench *b);
/* h_pgbench_dump — the tails of the current run's output files on stderr (a fail hook's
 * diagnostics). */
void h_pgbench_dump(const h_pgbench *b);

/* h_pgbench_books — the books of a pgbench database after its load (pgbench -i starts
 * every balance at 0 and each TPC-B-like transaction adds its delta to one account, one
 * teller and one branch and inserts one history row, atomically): sum(abalance) =
 * sum(delta) = sum(tbalance) = sum(bbalance), read in one statement (one snapshot, so
 * it holds under load too); pgbench_accounts has `accounts` rows and pgbench_history
 * `history` rows (each -1: not checked); with per_row, every account's, teller's and
 * branch's balance is the sum of its history's delta (no write lost or doubled). Fails
 * through h_eng_fail naming `when`; prints a line. Returns sum(delta). */
long long h_pgbench_books(PGconn *d, const char *when, long long accounts, long long history,
                          bool per_row);

#endif
