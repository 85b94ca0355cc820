/* osc_keeper.c — see osc_keeper.h. */
#include "osc_keeper.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_db.h"
#include "osc_window.h"

#define KEEPER_MAX_DBS 256

static pthread_mutex_t k_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t k_cond = PTHREAD_COND_INITIALIZER;
static pthread_t k_thread;
static bool k_running, k_stop;
static bool (*k_settings)(conf_t *out);
static char *k_dbs[KEEPER_MAX_DBS];
static int k_ndbs;

void osc_keeper_watch(const char *db)
{
    pthread_mutex_lock(&k_lock);
    bool known = false;
    for (int i = 0; i < k_ndbs && !known; i++)
        known = strcmp(k_dbs[i], db) == 0;
    if (!known && k_ndbs < KEEPER_MAX_DBS && (k_dbs[k_ndbs] = strdup(db)) != NULL)
        k_ndbs++;
    pthread_mutex_unlock(&k_lock);
}

/* One round: every watched database's expired windows. The list is copied first, so
 * watch() never waits for a database connection. */
static void round_once(const conf_t *s)
{
    char *dbs[KEEPER_MAX_DBS];
    int n = 0;
    pthread_mutex_lock(&k_lock);
    for (int i = 0; i < k_ndbs; i++)
        if ((dbs[n] = strdup(k_dbs[i])) != NULL)
            n++;
    pthread_mutex_unlock(&k_lock);
    for (int i = 0; i < n; i++) {
        char err[512];
        PGconn *c = osc_connect(dbs[i], "pgcutover keeper", err, sizeof err);
        if (c == NULL)
            osc_log(CONF_LOG_DEBUG, "keeper: database \"%s\": %s", dbs[i], err);
        else if (osc_state_exists(c))
            osc_window_expire(c, s->revert_window, s->revert_window_old_table == CONF_OLD_TABLE_DROP,
                              s->lock_timeout_ms);
        PQfinish(c);
        free(dbs[i]);
    }
}

static void *keeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&k_lock);
    while (!k_stop) {
        conf_t s = {0};
        if (!k_settings(&s))
            s.revert_window = 0; /* no settings (out of memory): a minute, windows' own lifetimes */
        int wait_s = s.revert_window <= 0 ? 60 : s.revert_window / 4;
        wait_s = wait_s < 1 ? 1 : wait_s > 60 ? 60 : wait_s;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_s;
        int rc = 0;
        while (!k_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&k_cond, &k_lock, &until);
        if (!k_stop) { /* every window carries its own lifetime (osc_window_expire) */
            pthread_mutex_unlock(&k_lock);
            round_once(&s);
            pthread_mutex_lock(&k_lock);
        }
        conf_free(&s);
    }
    pthread_mutex_unlock(&k_lock);
    return NULL;
}

bool osc_keeper_start(bool (*settings)(conf_t *out))
{
    pthread_mutex_lock(&k_lock);
    k_settings = settings;
    k_stop = false;
    k_running = settings && pthread_create(&k_thread, NULL, keeper_main, NULL) == 0;
    bool ok = k_running;
    pthread_mutex_unlock(&k_lock);
    return ok;
}

void osc_keeper_stop(void)
{
    pthread_mutex_lock(&k_lock);
    bool running = k_running;
    k_stop = true;
    pthread_cond_broadcast(&k_cond);
    pthread_mutex_unlock(&k_lock);
    if (running)
        pthread_join(k_thread, NULL);
    pthread_mutex_lock(&k_lock);
    k_running = false;
    for (int i = 0; i < k_ndbs; i++)
        free(k_dbs[i]);
    k_ndbs = 0;
    pthread_mutex_unlock(&k_lock);
}
