/*
 * pgw_extended.h — readers for the frontend messages of the extended query protocol that
 * the proxy inspects to track a session's prepared statements (Parse, Close, Describe,
 * Bind), and the first keyword of a simple Query. Pure code on byte spans, no
 * allocation: every string returned points into the caller's body, which must outlive
 * the result. Follows the PostgreSQL documentation, "Frontend/Backend Protocol",
 * 55.7 "Message Formats" (Parse, Bind, Close, Describe, Query) and the server's
 * exec_parse_message / exec_bind_message (src/backend/tcop/postgres.c) for the checks.
 * A malformed body gives PGW_BAD (the server would answer 08P01), never a read past n.
 */
#ifndef PGW_EXTENDED_H
#define PGW_EXTENDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgwire.h"

/* A Parse ('P') body: statement name ("" = the unnamed statement), query text, and
 * noids parameter type OIDs, read with pgw_parse_oid (0 = left to the server). */
typedef struct {
    const char *name;
    const char *query;
    int noids;
    const uint8_t *oids; /* noids big-endian uint32 inside the body */
} pgw_parse;

/*
 * pgw_read_parse — decode a Parse body of n bytes. PGW_BAD when a string lacks its
 * terminator, the OID count is negative or does not match the bytes left, or bytes
 * follow the last OID.
 */
pgw_status pgw_read_parse(const uint8_t *body, size_t n, pgw_parse *out);
/* pgw_parse_oid — parameter type OID i (0 <= i < p->noids). */
uint32_t pgw_parse_oid(const pgw_parse *p, int i);

/*
 * pgw_read_close — decode a Close ('C') or Describe ('D') body (the same layout: kind
 * byte 'S' statement or 'P' portal, then a name). PGW_BAD for another kind, a name
 * without terminator or bytes after it.
 */
pgw_status pgw_read_close(const uint8_t *body, size_t n, char *kind, const char **name);

/* What the proxy needs of a Bind ('B'): the names and whether any result column is asked
 * for in binary (a result-format code of 1; with one code, it applies to every column). */
typedef struct {
    const char *portal;
    const char *stmt;
    int nresult_formats;
    bool binary_results;
} pgw_bind;

/*
 * pgw_read_bind_stmt — the portal and statement names from the first n bytes of a Bind
 * body (whole: the n bytes are the whole body). PGW_INCOMPLETE when !whole and the
 * names do not end within n; PGW_BAD when whole and they do not.
 */
pgw_status pgw_read_bind_stmt(const uint8_t *body, size_t n, bool whole, const char **portal,
                              const char **stmt);
/*
 * pgw_read_bind — decode a whole Bind body: names, parameter format codes, parameters
 * (length -1 = NULL), result format codes. PGW_BAD on a negative count, a parameter
 * length under -1, a format code other than 0 or 1, or a count past the end or bytes
 * after the last code.
 */
pgw_status pgw_read_bind(const uint8_t *body, size_t n, pgw_bind *out);

/*
 * pgw_query_keyword — the first keyword of a Query's SQL (body: the NUL-terminated
 * string, first n bytes of it; whole: these are all of it), after blanks, "--" comments
 * and nested C-style comments, as PostgreSQL's scanner skips them. Copies at most
 * kwlen - 1 letters, lowercased, into kw (kwlen >= 1); a longer keyword is cut, an
 * empty kw means the text starts with something else (or is empty). PGW_INCOMPLETE when
 * !whole and the keyword may continue past n.
 */
pgw_status pgw_query_keyword(const uint8_t *body, size_t n, bool whole, char *kw, size_t kwlen);

#endif
