/*
 * osc_keeper.h — the engine's keeper thread: it ends revert windows (osc_window.h) that
 * have waited longer than the revert_window setting, in the databases where this process
 * ran or resumed a migration (never in others: a test's or a tenant's database is not
 * connected to without a reason, and DROP DATABASE is not disturbed). Each window ends
 * by the lifetime recorded when it opened, so a pgcutover set otherwise that resumed in
 * the same database (a second one, a test's) ends none early. It wakes every
 * revert_window / 4 seconds (between 1 and 60; 60 when 0), reads the settings each time
 * (reloadable), and stops with the engine.
 */
#ifndef OSC_KEEPER_H
#define OSC_KEEPER_H

#include "conf.h"

/* osc_keeper_start — start the thread; settings fills a conf_t copy (the caller's hook;
 * the keeper frees it). False when the thread cannot be created (windows then last until
 * DROP MIGRATION; logged by the caller). */
bool osc_keeper_start(bool (*settings)(conf_t *out));

/* osc_keeper_watch — remember database db (copied) for the keeper's rounds. Idempotent;
 * thread-safe. */
void osc_keeper_watch(const char *db);

/* osc_keeper_stop — wake the thread, wait for it to end, forget the databases. */
void osc_keeper_stop(void);

#endif
