/*
 * osc_result.h — the answer to one console command as plain data: an error (SQLSTATE,
 * message, hint), or typed columns, rows of text values and a command tag. The proxy
 * turns it into RowDescription/DataRow/CommandComplete or ErrorResponse ("Message
 * Formats"); the engine never sees a socket.
 */
#ifndef OSC_RESULT_H
#define OSC_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSC_MAX_COLS 48

/* Type OIDs the console uses (pg_type.h). */
#define OSC_T_BOOL 16
#define OSC_T_INT8 20
#define OSC_T_TEXT 25
#define OSC_T_FLOAT8 701
#define OSC_T_TIMESTAMPTZ 1184

typedef struct {
    bool ok;             /* false: error fields are set */
    char sqlstate[6];
    char message[1024];
    char hint[256];
    int ncols;
    char *colnames[OSC_MAX_COLS]; /* malloc'ed */
    uint32_t coltypes[OSC_MAX_COLS];
    int nrows, caprows;
    char **cells;        /* nrows * ncols, row-major; NULL = SQL NULL; malloc'ed */
    char tag[64];        /* CommandComplete tag, e.g. "SHOW" */
} osc_result;

/* osc_result_init — an empty successful result. */
void osc_result_init(osc_result *r);
/* osc_result_free — release columns and cells; *r is then an empty result. */
void osc_result_free(osc_result *r);
/* osc_result_error — drop any rows and make *r an error. hint may be NULL. */
void osc_result_error(osc_result *r, const char *sqlstate, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* osc_result_col — append a column (name copied). false on out of memory or too many. */
bool osc_result_col(osc_result *r, const char *name, uint32_t type);
/* osc_result_row — append a row of ncols values (copied; NULL = SQL NULL). */
bool osc_result_row(osc_result *r, const char *const *values);

#endif
