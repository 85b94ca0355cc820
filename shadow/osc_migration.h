/*
 * osc_migration.h — one migration's driver thread and its in-memory status (DESIGN.md
 * §2 steps 2-6 and 8): prepare, dual-write triggers, throttled keyset backfill, verify,
 * wait in ready; fail or abort with cleanup. State changes are written to
 * pgcutover.migrations before they take effect; the thread re-reads that row after a
 * reconnect or a restart and carries on from it.
 */
#ifndef OSC_MIGRATION_H
#define OSC_MIGRATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct osc_mig {
    int64_t id;
    char db[128];
    char table[300];     /* "schema.table", for logs */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every command and every state change */
    /* Commands, under lock. */
    bool pause, abort, stop;
    /* Settings in force, under lock (SET MIGRATION changes them while it runs). */
    int batch_size, target_batch_ms, max_rows_per_second, lock_timeout_ms;
    bool cutover_manual, cutover_force;
    bool cutover_req;    /* CUTOVER MIGRATION asked for a swap now */
    bool cutover_blocked; /* the last swap failed: wait for CUTOVER MIGRATION, even in auto */
    int cutover_gen;     /* incremented when a swap attempt sequence ends */
    bool batch_reset;    /* batch_size was SET: start again from it */
    /* Status, under lock. */
    char state[16];
    int64_t rows_copied, rows_estimated;
    double rows_per_second;
    int current_batch;
    char throttle[128];
    bool running;        /* the thread has not ended */
    struct osc_mig *next;
} osc_mig;

/* osc_deadline — CLOCK_REALTIME now + ms, for pthread_cond_timedwait on osc_mig.cond. */
struct timespec osc_deadline(int ms);

/* osc_mig_thread — pthread entry: drive m until it reaches a state this build ends in
 * (failed, aborted), or until stop. Clears m->running when it returns. */
void *osc_mig_thread(void *m);

/* osc_mig_cleanup — stop a migration's writes and drop its objects: the dual-write
 * function replaced by a no-op first (no table lock needed), then the triggers (proxy
 * hold, lock_timeout_ms, retries), the function and the shadow table. Idempotent.
 * Returns false with err filled when something is left (the reason says what). */
bool osc_mig_cleanup(void *conn, int64_t id, int lock_timeout_ms, char *err, size_t errlen);

#endif
