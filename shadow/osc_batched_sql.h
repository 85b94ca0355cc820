/*
 * osc_batched_sql.h — the SQL side of a batched data migration (issue 15, "Data
 * migrations"): one UPDATE or DELETE marked for batching (`-- pgcutover:batched`, the
 * console's BATCHED UPDATE …) runs as a sequence of key ranges of its target table, each
 * range its own transaction with its checkpoint. Pure code (no database): the statement is
 * read with libpg_query (the real PostgreSQL parser, protobuf parse tree), restricted to a
 * range by adding to its parse tree, and deparsed with pg_query_deparse_protobuf — never
 * by pasting text into the user's SQL, so literals, comments and dollar quotes that
 * contain "WHERE" are never touched.
 *
 * How the engine uses it (keyset pagination over the table's key k1, …, kn — a primary
 * key or NOT NULL unique key, which the engine finds in the catalog):
 *
 *     lo = none
 *     loop:
 *         hi = first row of osc_batched_bound_sql(t, keys, n, lo == none, batch)($lo)
 *         if no row: run osc_batched_range_sql_bounds(sql, keys, n, lo != none, false)($lo)
 *                    and stop (the last range is open above: it also takes rows inserted
 *                    at the top of the key meanwhile)
 *         run osc_batched_range_sql(sql, keys, n, lo == none)($lo, $hi); checkpoint hi
 *         lo = hi
 *
 * The bound query deliberately ignores the statement's WHERE: the ranges are ranges of the
 * whole table, each holding at most `batch` rows when it was measured, so each batch's
 * work (the rows the statement reads to decide, not only those it changes) is bounded, and
 * the sequence of ranges does not depend on what the statement changes — an UPDATE that
 * changes the columns of its own WHERE cannot shift or skip a range.
 *
 * A batched statement is not atomic: each range commits on its own, other sessions see
 * the table half done, and statement-level triggers fire once per batch. The key
 * comparisons are row comparisons, (k1, …, kn) > (…), resolved like the rest of the
 * user's statement (its session's search_path): the statement is the user's, run with
 * the user's rights. Whether an UPDATE assigns to a key column is the engine's check (it
 * knows the key), not this file's.
 */
#ifndef OSC_BATCHED_SQL_H
#define OSC_BATCHED_SQL_H

#include <stdbool.h>
#include <stddef.h>

/* The most key columns accepted: PostgreSQL's INDEX_MAX_KEYS (pg_config_manual.h), the
 * longest key an index — hence a primary or unique key — can have. */
#define OSC_BATCHED_MAX_KEYS 32

typedef struct {
    bool is_delete;
    char *schema; /* target table as written (NULL when unqualified); malloc'ed */
    char *table;  /* malloc'ed */
    char *alias;  /* the target's alias if written (UPDATE t AS x …), else NULL; malloc'ed */
    bool only;    /* written UPDATE ONLY / DELETE FROM ONLY: inheritance children are not
                   * touched, so osc_batched_bound_sql ranges over FROM ONLY too */
    char **set_columns; /* an UPDATE's assigned columns (SET a = …, (b, c) = …); malloc'ed */
    int nset;
} osc_batched_target;

/*
 * osc_batched_parse — parse sql, one UPDATE or DELETE, into *out (zeroed first; caller
 * frees with osc_batched_target_free). Refuses (false, a 5-character SQLSTATE in sqlstate,
 * what to do instead in err, nothing left allocated) what cannot be batched:
 *   42601  a syntax error, empty input, several statements, anything but UPDATE/DELETE
 *          (MERGE and INSERT included)
 *   0A000  a WITH clause (its queries — and a data-modifying CTE's writes — would run once
 *          per batch), WHERE CURRENT OF (one cursor row: nothing to batch), RETURNING (the
 *          rows would come back in pieces, one set per batch transaction), a parameter
 *          reference $n (the batch bounds are the statement's parameters), a statement
 *          libpg_query's deparser cannot print (every batch is the deparsed statement)
 *   53200  out of memory
 * Inheritance without ONLY is accepted (out->only says which was written).
 */
bool osc_batched_parse(const char *sql, osc_batched_target *out, char sqlstate[6], char *err,
                       size_t errlen);

/* osc_batched_target_free — release what osc_batched_parse allocated; safe on a zeroed
 * struct. */
void osc_batched_target_free(osc_batched_target *t);

/*
 * osc_batched_range_sql — sql (which osc_batched_parse accepts) restricted to one key range
 * of its target: its WHERE (or none) becomes
 *     (<original where>) AND (k1, …, kn) > ($1, …, $n) AND (k1, …, kn) <= ($n+1, …, $2n)
 * and, when first is true, has no lower bound — the upper bound is then $1, …, $n
 * (parameters are numbered over the bounds present, as osc_sql_chunk_end numbers them).
 * With one key column the comparisons are plain (k1 > $1). The key columns are qualified
 * with the target's alias, or its table name when it has none (a FROM or USING list may
 * have columns of the same name); the original condition stays one argument of the AND
 * (the deparser parenthesises it when it is an AND or OR, the only operators binding no
 * tighter than AND), so an OR in it keeps its meaning. key_columns are plain
 * column names, quoted by the deparser as needed; 1 ≤ nkeys ≤ OSC_BATCHED_MAX_KEYS.
 * The parameters are untyped in the text: the caller types them (the key columns' types)
 * at PQexecParams. Returns the deparsed statement, malloc'ed (caller frees), or NULL with
 * err filled (a statement osc_batched_parse refuses, bad key_columns, out of memory).
 */
char *osc_batched_range_sql(const char *sql, const char *const *key_columns, int nkeys, bool first,
                            char *err, size_t errlen);

/*
 * osc_batched_range_sql_bounds — osc_batched_range_sql with each bound optional: has_lo
 * adds (k…) > ($1…$n); has_hi adds (k…) <= (…) numbered after the lower bound's
 * parameters ($n+1… with has_lo, $1… without). Without either the statement is returned
 * deparsed unchanged (one range: the whole table). osc_batched_range_sql(…, first) is
 * osc_batched_range_sql_bounds(…, !first, true); the open-ended last range is has_hi false.
 */
char *osc_batched_range_sql_bounds(const char *sql, const char *const *key_columns, int nkeys,
                                   bool has_lo, bool has_hi, char *err, size_t errlen);

/*
 * osc_batched_bound_sql — the query for one range's upper bound (keyset pagination):
 *     SELECT k1, …, kn FROM [ONLY] <schema.table> WHERE (k1, …, kn) > ($1, …, $n)
 *     ORDER BY k1, …, kn LIMIT 1 OFFSET <batch_rows - 1>
 * (no WHERE and no parameters when first): the batch_rows-th key after the last range's
 * upper bound; no row when fewer rows remain (the caller then runs the last range open
 * above). It ignores the statement's WHERE on purpose (see the top of this file). Built
 * as a parse tree and deparsed, so identifiers are quoted by the deparser's rules (mixed
 * case, spaces, quotes, keywords). The table is t->schema/t->table as the statement wrote
 * them (same search_path resolution), ONLY when t->only. Returns a malloc'ed string
 * (caller frees), or NULL when nkeys is not in 1 … OSC_BATCHED_MAX_KEYS, a name is NULL or
 * empty, batch_rows is not in 1 … INT32_MAX (the deparser's integer constant), or out of
 * memory.
 */
char *osc_batched_bound_sql(const osc_batched_target *t, const char *const *key_columns, int nkeys,
                            bool first, long batch_rows);

/*
 * osc_batched_range_sql_typed / osc_batched_bound_sql_typed — the same statements for the
 * rights executor (osc_rights.h), whose EXECUTE … USING passes one text[] parameter:
 * parameter p becomes ($1)[p]::key_types[i] (key_types: the key columns' types as
 * format_type prints them, parsed by libpg_query into the tree, never pasted). With
 * key_types NULL they are the functions above.
 */
char *osc_batched_range_sql_typed(const char *sql, const char *const *key_columns,
                                  const char *const *key_types, int nkeys, bool has_lo, bool has_hi,
                                  char *err, size_t errlen);
char *osc_batched_bound_sql_typed(const osc_batched_target *t, const char *const *key_columns,
                                  const char *const *key_types, int nkeys, bool first, long batch_rows);

#endif
