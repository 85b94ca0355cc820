/* osc_migrate_cmd.c — see osc_migrate_cmd.h. A small tokenizer: words, SQL string
 * literals and dollar-quoted strings, the lexical rules of PostgreSQL's scan.l for those
 * two literal forms only (the command is not SQL, so libpg_query cannot read it). */
#include "osc_migrate_cmd.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *s, *p;
    char *err;
    size_t errlen;
    bool failed;
} lexer;

static bool fail(lexer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(lexer *x, const char *fmt, ...)
{
    if (x->failed)
        return false;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errlen, "MIGRATE: %s, at byte %ld", msg, (long)(x->p - x->s));
    x->failed = true;
    return false;
}

static void skip_space(lexer *x)
{
    while (*x->p && isspace((unsigned char)*x->p))
        x->p++;
}

/* The next word (letters, digits, '_') matches kw, case-insensitively: consume it. */
static bool accept_word(lexer *x, const char *kw)
{
    skip_space(x);
    size_t n = strlen(kw);
    if (strncasecmp(x->p, kw, n) != 0 || isalnum((unsigned char)x->p[n]) || x->p[n] == '_')
        return false;
    x->p += n;
    return true;
}

/* A string literal ('…' with '' for a quote) or a dollar-quoted string into *out. */
static bool string(lexer *x, char **out, const char *what)
{
    skip_space(x);
    if (*x->p == '\'') {
        const char *q = x->p + 1;
        size_t n = 0;
        for (const char *t = q;; t++) { /* measure */
            if (*t == 0)
                return fail(x, "%s: unterminated string", what);
            if (*t == '\'') {
                if (t[1] != '\'')
                    break;
                t++;
            }
            n++;
        }
        char *s = malloc(n + 1), *w = s;
        if (s == NULL)
            return fail(x, "out of memory");
        for (; *q != '\'' || q[1] == '\''; q++) {
            *w++ = *q;
            if (*q == '\'')
                q++;
        }
        *w = 0;
        x->p = q + 1;
        *out = s;
        return true;
    }
    if (*x->p == '$') {
        const char *t = x->p + 1;
        while (isalnum((unsigned char)*t) || *t == '_')
            t++;
        if (*t != '$' || isdigit((unsigned char)x->p[1]))
            return fail(x, "%s: a dollar quote's tag is letters, digits and '_' (not first a digit)", what);
        size_t tl = (size_t)(t + 1 - x->p);
        char tag[128];
        if (tl >= sizeof tag)
            return fail(x, "%s: dollar quote tag too long", what);
        memcpy(tag, x->p, tl);
        tag[tl] = 0;
        const char *body = t + 1, *end = strstr(body, tag);
        if (end == NULL)
            return fail(x, "%s: unterminated dollar quote %s", what, tag);
        *out = strndup(body, (size_t)(end - body));
        if (*out == NULL)
            return fail(x, "out of memory");
        x->p = end + tl;
        return true;
    }
    return fail(x, "%s: a string expected", what);
}

static bool number(lexer *x, long *out, const char *what)
{
    skip_space(x);
    char *end;
    long v = strtol(x->p, &end, 10);
    if (end == x->p || v <= 0 || isalnum((unsigned char)*end))
        return fail(x, "%s: a positive integer expected", what);
    x->p = end;
    *out = v;
    return true;
}

bool osc_mcmd_is(const char *cmd)
{
    lexer x = {cmd, cmd, NULL, 0, false};
    return accept_word(&x, "MIGRATE");
}

static bool file(lexer *x, osc_mcmd *m)
{
    osc_mfile f = {0};
    if (accept_word(x, "UP"))
        f.kind = OSC_MFILE_UP;
    else if (accept_word(x, "DOWN"))
        f.kind = OSC_MFILE_DOWN;
    else if (accept_word(x, "REPEATABLE"))
        f.kind = OSC_MFILE_REPEATABLE;
    else
        return fail(x, "FILE UP|DOWN|REPEATABLE expected");
    osc_mfile *grown = realloc(m->files, (size_t)(m->nfiles + 1) * sizeof *grown);
    if (grown == NULL)
        return fail(x, "out of memory");
    m->files = grown;
    m->files[m->nfiles++] = f;
    osc_mfile *g = &m->files[m->nfiles - 1];
    return string(x, &g->version, "FILE version") && string(x, &g->name, "FILE name") &&
           string(x, &g->text, "FILE text");
}

/* After ACCEPT: DATA LOSS, or a version whose drift is accepted. */
static bool accept_clause(lexer *x, osc_mcmd *m)
{
    if (accept_word(x, "DATA")) {
        m->accept_loss = true;
        return accept_word(x, "LOSS") || fail(x, "ACCEPT DATA LOSS expected");
    }
    char **grown = realloc(m->accept, (size_t)(m->naccept + 1) * sizeof *grown);
    if (grown == NULL)
        return fail(x, "out of memory");
    m->accept = grown;
    m->accept[m->naccept] = NULL;
    bool ok = string(x, &m->accept[m->naccept], "ACCEPT");
    m->naccept += ok;
    return ok;
}

bool osc_mcmd_parse(const char *cmd, osc_mcmd *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    lexer x = {cmd, cmd, err, errlen, false};
    static const struct {
        const char *w;
        osc_mig_verb v;
    } verbs[] = {{"UP", OSC_MIG_UP},         {"DOWN", OSC_MIG_DOWN}, {"STATUS", OSC_MIG_STATUS},
                 {"PLAN", OSC_MIG_PLAN},     {"ADOPT", OSC_MIG_ADOPT}};
    bool ok = accept_word(&x, "MIGRATE") || fail(&x, "not a MIGRATE command");
    bool verb = false;
    for (size_t i = 0; ok && !verb && i < sizeof verbs / sizeof verbs[0]; i++)
        if (accept_word(&x, verbs[i].w)) {
            out->verb = verbs[i].v;
            verb = true;
        }
    ok = ok && (verb || fail(&x, "MIGRATE UP|DOWN|STATUS|PLAN|ADOPT expected"));
    while (ok) {
        skip_space(&x);
        if (*x.p == 0)
            break;
        if (accept_word(&x, "LAYOUT")) {
            free(out->layout);
            ok = string(&x, &out->layout, "LAYOUT");
        } else if (accept_word(&x, "HISTORY")) {
            free(out->history);
            ok = string(&x, &out->history, "HISTORY");
        } else if (accept_word(&x, "TO")) {
            free(out->to);
            ok = string(&x, &out->to, "TO");
        } else if (accept_word(&x, "STEPS"))
            ok = number(&x, &out->steps, "STEPS");
        else if (accept_word(&x, "REVERT"))
            out->revert = true;
        else if (accept_word(&x, "ACCEPT"))
            ok = accept_clause(&x, out);
        else if (accept_word(&x, "FILE"))
            ok = file(&x, out);
        else
            ok = fail(&x, "unexpected \"%.20s\"", x.p);
    }
    if (!ok)
        osc_mcmd_free(out);
    return ok;
}

void osc_mcmd_free(osc_mcmd *m)
{
    for (int i = 0; i < m->nfiles; i++) {
        free(m->files[i].version);
        free(m->files[i].name);
        free(m->files[i].text);
    }
    for (int i = 0; i < m->naccept; i++)
        free(m->accept[i]);
    free(m->files);
    free(m->accept);
    free(m->layout);
    free(m->history);
    free(m->to);
    memset(m, 0, sizeof *m);
}
