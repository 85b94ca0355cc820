/* px_prepare_int.h — the parts of a session's prepared-statement tracking that
 * px_prepare.c (tracking) and px_reprepare.c (re-preparing) share. Not for other files. */
#ifndef PX_PREPARE_INT_H
#define PX_PREPARE_INT_H

#include "px_prepare.h"
#include "px_session.h"

/* One named prepared statement of the session. */
typedef struct {
    char *name;
    char *query;      /* Parse: the query text; SQL: what follows the name in its PREPARE,
                       * e.g. "(int) AS SELECT ..." */
    uint32_t *oids;   /* Parse's parameter type OIDs */
    int noids;
    bool sql;         /* made by SQL PREPARE (re-made by PREPARE) */
    bool confirmed;   /* the server confirmed its creation */
    bool closing;     /* a Close of it is on its way */
    bool binary;      /* a Bind asked for a binary result column */
    bool no_describe; /* executed without a Describe of its portal since the Bind */
    size_t bytes;     /* what it counts against max_prepared_statements_bytes */
} px_pstmt;

/* What a pending SQL-level statement of a Query does once it succeeded. */
typedef enum { PX_SQ_PREPARE, PX_SQ_DEALLOCATE, PX_SQ_DEALLOCATE_ALL } px_sq_kind;
typedef struct {
    px_sq_kind kind;
    int idx;          /* which statement of the Query (its CommandComplete) */
    px_pstmt *st;     /* PREPARE: the statement (not yet in the table) */
    char *name;       /* DEALLOCATE */
} px_sqlop;

/* A pending effect, in the order of the server's answers. */
typedef enum {
    PX_OP_SKIPZ,   /* n ReadyForQuery of requests sent before tracking began */
    PX_OP_SKIP,    /* n ParseComplete/CloseComplete of untracked Parse/Close */
    PX_OP_PARSE,   /* ParseComplete confirms st */
    PX_OP_CLOSE,   /* CloseComplete removes the statement called name */
    PX_OP_SYNC,    /* ReadyForQuery ends the group */
    PX_OP_QUERY,   /* a simple Query: its ReadyForQuery applies ops that succeeded */
} px_op_kind;
typedef struct {
    px_op_kind kind;
    uint32_t n;
    px_pstmt *st;
    char *name;
    px_sqlop *ops;
    int nops;
} px_op;

struct px_prep {
    px_pstmt **st;          /* the table (confirmed and pending creations) */
    int nst, capst;
    size_t bytes;
    px_op *q;               /* pending effects q[qhead..qlen) */
    int qhead, qlen, qcap;
    int qcc;                /* CommandCompletes of the Query at the head */
    bool qerr;              /* an ErrorResponse came for the Query at the head */
    px_pstmt *bound;        /* statement of the last Bind, until its Execute */
    bool described;         /* a Describe of a portal followed that Bind */
    /* re-prepare in flight (px_reprepare.c) */
    bool busy;
    int *groups;            /* per answer group: index into st, or a PX_G_* marker */
    int ngroups, gi;        /* groups sent, ReadyForQuery seen */
    int first_err;          /* in a transaction block: position of the first failed group */
    bool gerr;              /* an ErrorResponse came in the current group */
    bool in_xact;           /* the client's transaction was open: SAVEPOINT around it */
    bool *failed;           /* per statement index: its status in this re-prepare (bytes) */
    int done, left;         /* statements re-prepared / left to PostgreSQL this time */
    uint64_t start_us;
    uint64_t change;        /* sequence number of the change being answered */
};

#define PX_G_SAVEPOINT (-1)
#define PX_G_RELEASE (-2)
#define PX_G_ROLLBACK (-3)

/* px_pstmt_free — free one statement (not in any table). */
void px_pstmt_free(px_pstmt *st);
/* px_prep_remove — take st out of p's table and free it. */
void px_prep_remove(px_prep *p, px_pstmt *st);

#endif
