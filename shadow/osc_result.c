/* osc_result.c — see osc_result.h. */
#include "osc_result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void osc_result_init(osc_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
}

void osc_result_free(osc_result *r)
{
    for (int i = 0; i < r->ncols; i++)
        free(r->colnames[i]);
    for (int i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    osc_result_init(r);
}

void osc_result_error(osc_result *r, const char *sqlstate, const char *hint, const char *fmt, ...)
{
    osc_result_free(r);
    r->ok = false;
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate);
    snprintf(r->hint, sizeof r->hint, "%s", hint ? hint : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

bool osc_result_col(osc_result *r, const char *name, uint32_t type)
{
    if (r->ncols >= OSC_MAX_COLS || r->nrows > 0)
        return false;
    r->colnames[r->ncols] = strdup(name);
    if (r->colnames[r->ncols] == NULL)
        return false;
    r->coltypes[r->ncols++] = type;
    return true;
}

bool osc_result_row(osc_result *r, const char *const *values)
{
    if (r->nrows == r->caprows) {
        int cap = r->caprows ? r->caprows * 2 : 8;
        char **cells = realloc(r->cells, sizeof(char *) * (size_t)cap * (size_t)r->ncols);
        if (cells == NULL)
            return false;
        r->cells = cells;
        r->caprows = cap;
    }
    char **row = r->cells + (size_t)r->nrows * (size_t)r->ncols;
    for (int i = 0; i < r->ncols; i++) {
        row[i] = values[i] ? strdup(values[i]) : NULL;
        if (values[i] && row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return false;
        }
    }
    r->nrows++;
    return true;
}
