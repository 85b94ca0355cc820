/* conf_mask.c — see conf_mask.h. */
#include "conf_mask.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends to a fixed buffer, truncating. */
typedef struct {
    char *p;
    size_t len, n;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->len == 0)
        return;
    size_t room = b->len - 1 - b->n;
    if (n > room)
        n = room;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* libpq reads a dbname as a connection string only when it holds '=' or starts like a
 * URI (recognized_connection_string in fe-connect.c); otherwise it is a database name,
 * as migration_conninfo is passed (PQconnectdbParams with expand_dbname). */
static bool is_connection_string(const char *s)
{
    return strchr(s, '=') != NULL || strncmp(s, "postgresql://", 13) == 0 ||
           strncmp(s, "postgres://", 11) == 0;
}

static bool secret_option(const PQconninfoOption *o)
{
    return (o->dispchar && strchr(o->dispchar, '*')) || strstr(o->keyword, "password");
}

/* A value in libpq's key=value syntax: quoted when empty or holding space, ' or \. */
static void put_value(sbuf *b, const char *v)
{
    if (*v && strpbrk(v, " \t\n\r\f\v'\\") == NULL) {
        puts_(b, v);
        return;
    }
    put(b, "'", 1);
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            put(b, "\\", 1);
        put(b, v, 1);
    }
    put(b, "'", 1);
}

void conf_mask_conninfo(const char *conninfo, char *buf, size_t len)
{
    sbuf b = {buf, len, 0};
    if (len > 0)
        buf[0] = '\0';
    if (conninfo == NULL || *conninfo == '\0')
        return;
    if (!is_connection_string(conninfo)) {
        puts_(&b, conninfo); /* a database name */
        return;
    }
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    PQfreemem(errmsg);
    if (opts == NULL) {
        puts_(&b, CONF_MASK " (not a valid connection string)");
        return;
    }
    bool first = true;
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        if (!first)
            put(&b, " ", 1);
        first = false;
        puts_(&b, o->keyword);
        put(&b, "=", 1);
        if (secret_option(o))
            puts_(&b, CONF_MASK);
        else
            put_value(&b, o->val);
    }
    PQconninfoFree(opts);
}

bool conf_is_secret(const conf_setting *s)
{
    return strstr(s->name, "password") || strstr(s->name, "secret") ||
           strstr(s->name, "passphrase");
}

static bool is_conninfo(const conf_setting *s)
{
    return strcmp(s->name, "migration_conninfo") == 0;
}

void conf_value_display(const conf_t *c, const conf_setting *s, char *buf, size_t len)
{
    if (conf_is_secret(s)) {
        char v[16];
        conf_value_text(c, s, v, sizeof v);
        snprintf(buf, len, "%s", *v ? CONF_MASK : "");
        return;
    }
    if (is_conninfo(s)) {
        const char *v = *(char *const *)((const char *)c + s->offset);
        conf_mask_conninfo(v, buf, len);
        return;
    }
    conf_value_text(c, s, buf, len);
}

bool conf_conninfo_check(const char *conninfo, char *reason, size_t len)
{
    if (!is_connection_string(conninfo))
        return true; /* a database name */
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    if (opts != NULL) {
        PQconninfoFree(opts);
        PQfreemem(errmsg);
        return true;
    }
    sbuf b = {reason, len, 0};
    if (len > 0)
        reason[0] = '\0';
    puts_(&b, "not a valid libpq connection string");
    if (errmsg == NULL)
        return false;
    puts_(&b, ": ");
    size_t n = strcspn(errmsg, "\n"); /* libpq ends its messages with a newline */
    for (size_t i = 0; i < n;) {
        if (errmsg[i] != '"') {
            put(&b, &errmsg[i++], 1);
            continue;
        }
        size_t q = strcspn(errmsg + i + 1, "\"\n"), end = i + 1 + q;
        /* Keep a quoted punctuation mark ("=" in 'missing "=" after'); hide the rest. */
        bool keep = q == 1 && strchr("=&?/:@", errmsg[i + 1]) != NULL;
        put(&b, "\"", 1);
        put(&b, keep ? errmsg + i + 1 : "...", keep ? 1 : 3);
        put(&b, "\"", 1);
        i = end < n ? end + 1 : n;
    }
    PQfreemem(errmsg);
    return false;
}

/* Replace every occurrence of secret in text by CONF_MASK. */
static void replace_all(char *text, size_t cap, const char *secret)
{
    size_t sl = strlen(secret), ml = strlen(CONF_MASK);
    if (sl == 0)
        return;
    char *out = malloc(cap);
    if (out == NULL) {
        /* Cannot rebuild: hide the whole text rather than risk showing the secret. */
        if (strstr(text, secret))
            snprintf(text, cap, "%s", CONF_MASK);
        return;
    }
    sbuf b = {out, cap, 0};
    out[0] = '\0';
    const char *p = text;
    for (const char *hit; (hit = strstr(p, secret)) != NULL; p = hit + sl) {
        put(&b, p, (size_t)(hit - p));
        put(&b, CONF_MASK, ml);
    }
    puts_(&b, p);
    memcpy(text, out, b.n + 1);
    free(out);
}

void conf_mask_in_text(char *text, size_t cap, const char *conninfo)
{
    if (text == NULL || cap == 0 || conninfo == NULL || *conninfo == '\0')
        return;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && secret_option(o))
            replace_all(text, cap, o->val);
    PQconninfoFree(opts);
}
