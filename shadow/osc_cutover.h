/*
 * osc_cutover.h — the swap (DESIGN.md §2.7), inside one transaction that already holds
 * ACCESS EXCLUSIVE on the original and the shadow: capture what must be carried over
 * (with search_path = '' so every captured name is schema-qualified), drop the
 * dual-write triggers, rename the original to pgcutover.<old_name> and the shadow to the
 * original's schema and name, then carry over sequences (serial ownership, identity
 * values and names), index names, owner, grants (table and column), row level security
 * and its policies, user triggers and their enablement, replica identity, publication
 * membership, the table comment, dependent views, and incoming foreign keys (re-added
 * NOT VALID). Queries follow the system catalogs chapter (pg_class, pg_constraint,
 * pg_trigger, pg_policy, pg_publication_rel, pg_depend, pg_rewrite) and ALTER TABLE.
 */
#ifndef OSC_CUTOVER_H
#define OSC_CUTOVER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "osc_sql.h"

/*
 * osc_cutover_swap — run the swap of m in c's open transaction. old_name is the name
 * the original gets in schema pgcutover. Statements to run after COMMIT (VALIDATE
 * CONSTRAINT of the NOT VALID foreign keys) are appended to after_commit, one per line.
 * Returns false with the failing statement's error in err (and its SQLSTATE in code);
 * the caller rolls back.
 */
bool osc_cutover_swap(PGconn *c, const osc_map *m, const char *old_name, osc_sb *after_commit,
                      char *err, size_t errlen, char code[6]);

#endif
