/*
 * osc_driver.h — internal to a migration's driver thread (osc_migration.c, osc_swap.c):
 * the thread's context, the outcome of a step, and the helpers both files use. Not for
 * the rest of the engine (the driver's interface is osc_migration.h). Every function here
 * runs on the driver's own thread, with its own connection x->c; none takes m->lock on
 * entry (those that need it take and release it themselves).
 */
#ifndef OSC_DRIVER_H
#define OSC_DRIVER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "osc_migration.h"
#include "osc_sql.h"

/* The outcome of a step: go on (R_OK); the migration failed (R_FAIL); the connection is
 * lost, reconnect and resume from the row (R_CONN); stop or abort was asked for (R_STOP,
 * R_ABORT); the migration is done (R_DONE). */
typedef enum { R_OK, R_FAIL, R_CONN, R_STOP, R_ABORT, R_DONE } step_rc;

/* One driver thread's context (osc_mig_thread owns it, on its stack). */
typedef struct {
    osc_mig *m;
    PGconn *c;
    osc_map map;
    bool have_map;
    bool capture_current; /* the dual-write function is this build's (refresh_capture) */
    char apply_err[1600]; /* the cutover's application of the log failed with this */
    char err[1536];
    char ids[32];
} run_ctx;

/* osc_drv_now_s — CLOCK_MONOTONIC now, in seconds (for durations and rates). */
double osc_drv_now_s(void);

/* osc_drv_set_status — set m's in-memory state and/or throttle text (NULL: unchanged;
 * copied, truncated to the fields' sizes) under m->lock, and wake m->cond's waiters. */
void osc_drv_set_status(osc_mig *m, const char *state, const char *throttle);

/* osc_drv_wait_command — wait up to ms milliseconds (0: just look) on m->cond for a
 * command; returns the one pending: R_ABORT before R_STOP, else R_OK. */
step_rc osc_drv_wait_command(osc_mig *m, int ms);

/* osc_drv_failed — classify a failed statement by its SQLSTATE code: R_CONN when the
 * connection is lost (not CONNECTION_OK, class 08, or 57P01 admin_shutdown), else R_FAIL
 * (PostgreSQL docs, Appendix A "PostgreSQL Error Codes"). */
step_rc osc_drv_failed(run_ctx *x, const char *code);

/* osc_drv_set_state — record state, phase and error (NULL: none) in the migration's row
 * (osc_state_set), then in memory, and log it. False with x->err filled when the row
 * could not be written. */
bool osc_drv_set_state(run_ctx *x, const char *state, const char *phase, const char *error);

/* osc_drv_fail_with — fail the migration with reason why (copied first, so it may be
 * x->err): state failed, then osc_mig_cleanup, and the cleanup's outcome recorded in
 * phase. R_FAIL, or R_CONN when the row could not be written. */
step_rc osc_drv_fail_with(run_ctx *x, const char *why);

/* osc_drv_retryable — a lock or serialization conflict with the application (55P03
 * lock_not_available, 40P01 deadlock_detected, 40001 serialization_failure): retried,
 * never the migration's failure. */
bool osc_drv_retryable(const char *code);

/* osc_drv_apply_log — apply the change log to the shadow in a transaction of its own
 * (osc_capture_apply; the count applied in *applied when not NULL). A row the shadow
 * rejects (a CHECK or cast the ALTER adds, a unique key it adds) fails the migration with
 * PostgreSQL's reason (osc_drv_fail_with); a retryable conflict leaves the log for the
 * next application and waits 100 ms for a command. R_OK, R_CONN, R_FAIL, or the pending
 * command. */
step_rc osc_drv_apply_log(run_ctx *x, int64_t *applied);

/* osc_drv_cutover — in osc_swap.c. One swap sequence (DESIGN.md §2 step 7): ANALYZE of
 * the shadow, then up to cutover_attempts tries of hold → LOCK TABLE (lock_timeout_ms;
 * with cutover_force the blockers are cancelled or terminated from the second try) →
 * the log's last rows → osc_cutover_swap → state done → COMMIT → release, then the
 * post-commit statements. R_DONE when swapped; R_OK back in ready (the reason in phase)
 * when the locks never came or the swap failed; R_FAIL, R_CONN or a command otherwise.
 * Ends by clearing m->cutover_req, setting cutover_blocked unless swapped, incrementing
 * cutover_gen and waking CUTOVER MIGRATION. */
step_rc osc_drv_cutover(run_ctx *x);

/* osc_drv_run_post_commit — in osc_swap.c. Run the statements the swap recorded in the
 * row's post_commit (VALIDATE of foreign keys re-added NOT VALID), one per line, outside
 * the lock; a statement that fails is logged and skipped. Clears post_commit. Returns
 * false only when the connection is gone. */
bool osc_drv_run_post_commit(run_ctx *x);

#endif
