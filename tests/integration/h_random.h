/*
 * h_random.h — the application side of test_engine_random.c (whose header describes the
 * design): the seeded generator, the model of table t (one row per key index, the key's
 * and the values' SQL spellings), the DDL and data written from the model (for t and for
 * the oracle's reference table) and the client threads that write t through the proxy
 * and keep the model, changed only when a COMMIT succeeds.
 *
 * The model and the clients are process-wide state, one seed at a time: h_rnd_model_init
 * sets them up for a scenario, h_rnd_model_free releases them. The functions below are
 * for the main thread only (errors fail the test through cmocka); the client threads make
 * no cmocka calls and count their errors instead (h_rnd_clients_totals).
 */
#ifndef PGC_H_RANDOM_H
#define PGC_H_RANDOM_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "h_engine.h" /* h_proxy (harness.h has declarations after its include guard) */

/* The key of t: int, bigint, composite (int, text), text COLLATE public.ci, numeric. */
enum h_rnd_key { H_RND_K_INT, H_RND_K_BIGINT, H_RND_K_COMP, H_RND_K_CI, H_RND_K_NUM };

/* The column whose conversion by the ALTER is session dependent, if any. */
enum h_rnd_sens { H_RND_S_NONE, H_RND_S_TS, H_RND_S_F, H_RND_S_D };

/* A seed's scenario, picked by the test. The model and the clients read seed, key, sens,
 * uniq2 and oidw. */
typedef struct {
    unsigned seed;
    enum h_rnd_key key;
    int alter;            /* the test's index into its list of ALTERs */
    enum h_rnd_sens sens; /* that ALTER's session-dependent column */
    char alter_sql[128];  /* the full statement */
    bool uniq2;           /* u UNIQUE in the original DDL */
    bool oidw;            /* SQL-body function rand_set_v updating t */
    bool manual;          /* cutover = manual + CUTOVER MIGRATION n */
    bool f_pause, f_term, f_kill;
    bool baseline;
} h_rnd_scenario;

/* The clients' counters summed over all clients (h_rnd_clients_totals). */
typedef struct {
    long ops, commits, post_commits, autocommits, rollbacks, errors;
} h_rnd_totals;

/* h_rnd_u — the next value of the splitmix64 generator of state *s, reduced to [0, n)
 * (n > 0). Deterministic for a given state; *s is advanced. */
unsigned h_rnd_u(uint64_t *s, unsigned n);

/* h_rnd_model_init — copy *sc (the model and the clients use the copy from then on) and
 * allocate and fill the model from sc->seed: filler rows nobody touches around the
 * clients' key ranges, the clients' keys present two times in three. The model is owned
 * here until h_rnd_model_free; fails the test when out of memory. */
void h_rnd_model_init(const h_rnd_scenario *sc);
/* h_rnd_model_rows — the number of rows present in the model. */
long long h_rnd_model_rows(void);
/* h_rnd_model_free — free the model (nothing when there is none). Stop the clients
 * first. */
void h_rnd_model_free(void);

/* h_rnd_create_table — CREATE TABLE schema.t with the scenario's original DDL on dc (the
 * same for t and the oracle's reference); fails the test on an error. */
void h_rnd_create_table(PGconn *dc, const char *schema);
/* h_rnd_insert_model — insert every present model row into schema.t on dc; the
 * session-dependent column is NULL in rows whose value is of the new type (set after
 * the ALTER by h_rnd_set_post_values). Fails the test on an error. */
void h_rnd_insert_model(PGconn *dc, const char *schema);
/* h_rnd_set_post_values — on schema.t, after its ALTER: set the session-dependent column
 * of the rows whose model value is of the new type (nothing without such a column).
 * Fails the test on an error. */
void h_rnd_set_post_values(PGconn *dc, const char *schema);

/* h_rnd_clients_start — start the client threads, connected to database db through px
 * (the conninfo is copied); each owns its connection. Fails the test when a thread
 * cannot be created. Call h_rnd_model_init first. */
void h_rnd_clients_start(const h_proxy *px, const char *db);
/* h_rnd_clients_stop — stop and join the client threads and close their connections
 * (nothing when they are not running). Their counters and errors stay readable. */
void h_rnd_clients_stop(void);
/* h_rnd_run_for — let the clients run for at least `more` further operations, or ms
 * milliseconds, whichever comes first. */
void h_rnd_run_for(long more, int ms);
/* h_rnd_clients_quiesce — ask the clients to wait between transactions and wait for all
 * of them to (30 s at most). Returns whether they all did; either way they wait until
 * h_rnd_clients_release. */
bool h_rnd_clients_quiesce(void);
/* h_rnd_clients_release — let quiesced clients go on; when px is not NULL they first
 * reconnect to database db through px (the conninfo is copied). */
void h_rnd_clients_release(const h_proxy *px, const char *db);
/* h_rnd_clients_totals — the clients' counters summed into *t (read them once the
 * clients are stopped). */
void h_rnd_clients_totals(h_rnd_totals *t);
/* h_rnd_clients_print_errors — print the first errors of each client (at most three
 * each), one indented line each, to stderr. */
void h_rnd_clients_print_errors(void);

#endif
