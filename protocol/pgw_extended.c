/* pgw_extended.c — see pgw_extended.h ("Message Formats": Parse, Bind, Close, Describe,
 * Query; the lexer rules of src/backend/parser/scan.l for blanks and comments). */
#include "pgw_extended.h"

#include <string.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int be16s(const uint8_t *p)
{
    return (int16_t)(uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

/* str — the NUL-terminated string at *pos in body[0..n); advances *pos past the NUL.
 * NULL when it has no terminator. */
static const char *str(const uint8_t *body, size_t n, size_t *pos)
{
    if (*pos >= n)
        return NULL;
    const uint8_t *z = memchr(body + *pos, 0, n - *pos);
    if (z == NULL)
        return NULL;
    const char *s = (const char *)body + *pos;
    *pos = (size_t)(z - body) + 1;
    return s;
}

pgw_status pgw_read_parse(const uint8_t *body, size_t n, pgw_parse *out)
{
    size_t pos = 0;
    memset(out, 0, sizeof *out);
    const char *name = str(body, n, &pos);
    const char *query = name ? str(body, n, &pos) : NULL;
    if (query == NULL || n - pos < 2)
        return PGW_BAD;
    int k = be16s(body + pos);
    pos += 2;
    if (k < 0 || n - pos != (size_t)k * 4)
        return PGW_BAD;
    out->name = name;
    out->query = query;
    out->noids = k;
    out->oids = body + pos;
    return PGW_OK;
}

uint32_t pgw_parse_oid(const pgw_parse *p, int i)
{
    return be32(p->oids + (size_t)i * 4);
}

pgw_status pgw_read_close(const uint8_t *body, size_t n, char *kind, const char **name)
{
    size_t pos = 1;
    if (n < 2 || (body[0] != 'S' && body[0] != 'P'))
        return PGW_BAD;
    const char *s = str(body, n, &pos);
    if (s == NULL || pos != n)
        return PGW_BAD;
    *kind = (char)body[0];
    *name = s;
    return PGW_OK;
}

pgw_status pgw_read_bind_stmt(const uint8_t *body, size_t n, bool whole, const char **portal,
                              const char **stmt)
{
    size_t pos = 0;
    const char *p = str(body, n, &pos);
    const char *s = p ? str(body, n, &pos) : NULL;
    if (s == NULL)
        return whole ? PGW_BAD : PGW_INCOMPLETE;
    *portal = p;
    *stmt = s;
    return PGW_OK;
}

/* A count of int16 format codes (each 0 or 1) at *pos; advances past them. -1 if bad;
 * otherwise the count, and *binary is set when a code is 1. */
static int formats(const uint8_t *body, size_t n, size_t *pos, bool *binary)
{
    if (n - *pos < 2)
        return -1;
    int k = be16s(body + *pos);
    *pos += 2;
    if (k < 0 || n - *pos < (size_t)k * 2)
        return -1;
    for (int i = 0; i < k; i++) {
        int f = be16s(body + *pos + (size_t)i * 2);
        if (f != 0 && f != 1)
            return -1;
        if (f == 1 && binary)
            *binary = true;
    }
    *pos += (size_t)k * 2;
    return k;
}

pgw_status pgw_read_bind(const uint8_t *body, size_t n, pgw_bind *out)
{
    size_t pos = 0;
    memset(out, 0, sizeof *out);
    const char *portal = str(body, n, &pos);
    const char *stmt = portal ? str(body, n, &pos) : NULL;
    if (stmt == NULL || formats(body, n, &pos, NULL) < 0 || n - pos < 2)
        return PGW_BAD;
    int np = be16s(body + pos);
    pos += 2;
    if (np < 0)
        return PGW_BAD;
    for (int i = 0; i < np; i++) {
        if (n - pos < 4)
            return PGW_BAD;
        int32_t len = (int32_t)be32(body + pos);
        pos += 4;
        if (len < -1 || (len > 0 && n - pos < (size_t)len))
            return PGW_BAD;
        if (len > 0)
            pos += (size_t)len;
    }
    bool binary = false;
    int nr = formats(body, n, &pos, &binary);
    if (nr < 0 || pos != n)
        return PGW_BAD;
    out->portal = portal;
    out->stmt = stmt;
    out->nresult_formats = nr;
    out->binary_results = binary;
    return PGW_OK;
}

static bool blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool letter(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

pgw_status pgw_query_keyword(const uint8_t *body, size_t n, bool whole, char *kw, size_t kwlen)
{
    size_t i = 0;
    kw[0] = 0;
    for (;;) {
        while (i < n && blank(body[i]))
            i++;
        if (i + 1 < n && body[i] == '-' && body[i + 1] == '-') {
            while (i < n && body[i] != '\n' && body[i] != 0)
                i++;
            continue;
        }
        if (i + 1 < n && body[i] == '/' && body[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < n && depth > 0 && body[i] != 0) {
                if (i + 1 < n && body[i] == '/' && body[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (i + 1 < n && body[i] == '*' && body[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            }
            if (depth > 0 && (i >= n || body[i] == 0))
                return whole || (i < n && body[i] == 0) ? PGW_OK : PGW_INCOMPLETE;
            continue;
        }
        break;
    }
    /* A lone '-' or '/' at the end of a prefix may start a comment. */
    if (!whole && (i >= n || (i + 1 == n && (body[i] == '-' || body[i] == '/'))))
        return PGW_INCOMPLETE;
    size_t k = 0;
    while (i < n && letter(body[i])) {
        if (k + 1 < kwlen) {
            uint8_t c = body[i];
            kw[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        i++;
    }
    kw[k] = 0;
    if (!whole && i >= n)
        return PGW_INCOMPLETE;
    return PGW_OK;
}
