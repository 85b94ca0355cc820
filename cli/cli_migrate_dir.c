/* cli_migrate_dir.c — see cli_migrate_dir.h. */
#include "cli_migrate_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MD_MAX_DEPTH 16
#define MD_DIGITS "0123456789"
#define MD_WANTS                                                                                   \
    "golang-migrate wants {version}_{title}.up.sql, Flyway V{version}__{desc}.sql, "               \
    "Prisma {timestamp}_{name}/migration.sql"

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool oom(char *err, size_t errlen)
{
    return fail(err, errlen, "out of memory");
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* a "/" b, without doubling a '/' that a ends with; b alone when a is "". */
static char *join(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    bool sep = an > 0 && a[an - 1] != '/';
    char *p = malloc(an + sep + bn + 1);
    if (!p)
        return NULL;
    memcpy(p, a, an);
    if (sep)
        p[an] = '/';
    memcpy(p + an + sep, b, bn + 1);
    return p;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

/* ---- comparison ---------------------------------------------------------------- */

/* Two runs of decimal digits as numbers of any size: leading zeros skipped, then the
 * longer is larger, then digit by digit. An empty run is 0. */
static int cmp_digits(const char *a, size_t an, const char *b, size_t bn)
{
    while (an > 0 && *a == '0')
        a++, an--;
    while (bn > 0 && *b == '0')
        b++, bn--;
    if (an != bn)
        return an < bn ? -1 : 1;
    return sign(memcmp(a, b, an));
}

/* golang-migrate: the leading digits as an unsigned number; whatever follows (nothing,
 * for a version cli_md_read returns) byte-wise. */
static int cmp_golang(const char *a, const char *b)
{
    size_t an = strspn(a, MD_DIGITS), bn = strspn(b, MD_DIGITS);
    int c = cmp_digits(a, an, b, bn);
    return c ? c : sign(strcmp(a + an, b + bn));
}

/* Flyway's MigrationVersion.compareTo: parts separated by '.' or '_' compared as
 * numbers, a part one side lacks counting as 0. "" (a repeatable, no version) sorts
 * after every version, as ResolvedMigrationComparator puts repeatables last. */
static int cmp_flyway(const char *a, const char *b)
{
    if (!*a || !*b)
        return (!*a) - (!*b);
    for (;;) {
        size_t an = strspn(a, MD_DIGITS), bn = strspn(b, MD_DIGITS);
        int c = cmp_digits(a, an, b, bn);
        if (c)
            return c;
        a += an;
        b += bn;
        bool am = *a == '.' || *a == '_', bm = *b == '.' || *b == '_';
        if (!am && !bm)
            break;
        a += am;
        b += bm;
    }
    return sign(strcmp(a, b));
}

int cli_md_compare(cli_md_layout layout, const char *a, const char *b)
{
    switch (layout) {
    case CLI_MD_GOLANG:
        return cmp_golang(a, b);
    case CLI_MD_FLYWAY:
        return cmp_flyway(a, b);
    case CLI_MD_PRISMA:
        break;
    }
    return sign(strcmp(a, b));
}

/* Next code point of UTF-8 string *p (advanced past it); an invalid byte reads as
 * U+FFFD, as Java's decoder would make it. 0 at the end. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (c == 0)
        return 0;
    if (n < 0) {
        *p = s + 1;
        return 0xFFFD;
    }
    static const uint32_t lead_bits[] = {0x7F, 0x1F, 0x0F, 0x07};
    c &= lead_bits[n];
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + 1;
            return 0xFFFD;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *p = s + 1;
        return 0xFFFD;
    }
    *p = s + 1 + n;
    return c;
}

/* Java's String.compareTo on the UTF-16 form of two UTF-8 strings (Flyway orders
 * repeatables so). UTF-16 order is code point order except that a supplementary
 * character (a surrogate pair, 0xD800..) sorts before U+E000..U+FFFF: lift those above
 * every supplementary one. Equal in Java but different bytes (invalid UTF-8): strcmp,
 * so that the order stays total. */
static int cmp_java(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    for (;;) {
        uint32_t x = utf8_next(&p), y = utf8_next(&q);
        if (x >= 0xE000 && x <= 0xFFFF)
            x += 0x200000;
        if (y >= 0xE000 && y <= 0xFFFF)
            y += 0x200000;
        if (x != y)
            return x < y ? -1 : 1;
        if (x == 0)
            break;
    }
    return sign(strcmp(a, b));
}

/* ---- directory listing --------------------------------------------------------- */

typedef struct {
    char *name;
    bool is_dir, is_reg; /* after following symbolic links */
} md_dent;

typedef struct {
    md_dent *e;
    int n, cap;
} md_dents;

static void dents_free(md_dents *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->e[i].name);
    free(d->e);
    memset(d, 0, sizeof *d);
}

static int dent_cmp(const void *a, const void *b)
{
    return strcmp(((const md_dent *)a)->name, ((const md_dent *)b)->name);
}

/* The non-hidden entries of directory path, sorted by name (byte-wise), so that what
 * is checked first, and named in an error, never depends on readdir's order. */
static bool list_dir(const char *path, md_dents *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(path);
    if (!d)
        return fail(err, errlen, "cannot open migration directory %s: %s", path, strerror(errno));
    bool ok = true;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                ok = fail(err, errlen, "cannot read migration directory %s: %s", path,
                          strerror(errno));
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        char *full = join(path, de->d_name);
        if (!full) {
            ok = oom(err, errlen);
            break;
        }
        struct stat st;
        int rc = stat(full, &st);
        int serr = errno;
        free(full);
        if (rc != 0) {
            /* A dangling link or a file gone meanwhile: only a would-be migration
             * matters. */
            if (ends_with(de->d_name, ".sql")) {
                ok = fail(err, errlen, "cannot read %s/%s: %s", path, de->d_name, strerror(serr));
                break;
            }
            continue;
        }
        if (out->n == out->cap) {
            int cap = out->cap ? out->cap * 2 : 16;
            md_dent *e = realloc(out->e, (size_t)cap * sizeof *e);
            if (!e) {
                ok = oom(err, errlen);
                break;
            }
            out->e = e;
            out->cap = cap;
        }
        md_dent *e = &out->e[out->n];
        e->name = strdup(de->d_name);
        if (!e->name) {
            ok = oom(err, errlen);
            break;
        }
        e->is_dir = S_ISDIR(st.st_mode);
        e->is_reg = S_ISREG(st.st_mode);
        out->n++;
    }
    closedir(d);
    if (!ok) {
        dents_free(out);
        return false;
    }
    if (out->n > 1)
        qsort(out->e, (size_t)out->n, sizeof *out->e, dent_cmp);
    return true;
}

/* ---- file names ---------------------------------------------------------------- */

typedef enum {
    K_NONE,        /* fits no layout */
    K_GO_UP,       /* golang-migrate {version}_{title}.up.sql */
    K_GO_DOWN,     /* golang-migrate {version}_{title}.down.sql */
    K_FW_V,        /* Flyway versioned */
    K_FW_U,        /* Flyway undo */
    K_FW_R,        /* Flyway repeatable */
    K_FW_CALLBACK, /* Flyway SQL callback (beforeMigrate.sql …): refused */
    K_FW_BASELINE, /* Flyway baseline migration (B1__x.sql): refused */
} md_kind;

typedef struct {
    md_kind kind;
    const char *ver, *title; /* into the name */
    size_t verlen, titlelen;
    const char *why; /* K_NONE: what is wrong, or NULL */
} md_class;

/* Flyway: digits, then any number of ('.' or '_', digits) — what MigrationVersion
 * accepts once '_' reads as '.', without BigInteger's sign. */
static bool fw_version_ok(const char *s, size_t n)
{
    bool want_digit = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            want_digit = false;
        else if ((s[i] == '.' || s[i] == '_') && !want_digit)
            want_digit = true;
        else
            return false;
    }
    return !want_digit;
}

/* Position of the first "__" in s[0, n), or n. */
static size_t find_sep(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '_' && s[i + 1] == '_')
            return i;
    return n;
}

/* Flyway's callback event ids (org.flywaydb.core.api.callback.Event) are all
 * before<Event>, after<Event> or createSchema; a callback file is <id>.sql or
 * <id>__<description>.sql. */
static bool fw_callback(const char *stem, size_t n)
{
    size_t k = find_sep(stem, n);
    size_t p = k >= 6 && memcmp(stem, "before", 6) == 0  ? 6
               : k >= 5 && memcmp(stem, "after", 5) == 0 ? 5
                                                         : 0;
    if (k == 12 && memcmp(stem, "createSchema", 12) == 0)
        return true;
    if (p == 0 || p == k || !(stem[p] >= 'A' && stem[p] <= 'Z'))
        return false;
    for (size_t i = p; i < k; i++)
        if (!((stem[i] >= 'A' && stem[i] <= 'Z') || (stem[i] >= 'a' && stem[i] <= 'z')))
            return false;
    return true;
}

/* What a file name ending in ".sql" is. */
static md_class classify_sql(const char *base)
{
    md_class c = {.kind = K_NONE};
    size_t len = strlen(base), d = strspn(base, MD_DIGITS);

    /* golang-migrate: ^([0-9]+)_(.*)\.(up|down)\.sql$ */
    if (d > 0 && base[d] == '_') {
        static const char up[] = ".up.sql", down[] = ".down.sql";
        size_t ul = sizeof up - 1, dl = sizeof down - 1;
        if (len >= d + 1 + ul && ends_with(base, up))
            c.kind = K_GO_UP, c.titlelen = len - ul - d - 1;
        else if (len >= d + 1 + dl && ends_with(base, down))
            c.kind = K_GO_DOWN, c.titlelen = len - dl - d - 1;
        else
            c.why = "a golang-migrate name ends in .up.sql or .down.sql";
        if (c.kind != K_NONE)
            c.ver = base, c.verlen = d, c.title = base + d + 1;
        return c;
    }

    /* Flyway: prefix, version, "__", description, ".sql" (ResourceNameParser). */
    const char *stem = base;
    size_t n = len - 4;
    if (fw_callback(stem, n)) {
        c.kind = K_FW_CALLBACK;
        return c;
    }
    if (n == 0)
        return c;
    const char *rest = stem + 1;
    size_t rn = n - 1, sep = find_sep(rest, rn);
    c.ver = rest;
    c.verlen = sep;
    c.title = sep < rn ? rest + sep + 2 : rest + rn;
    c.titlelen = sep < rn ? rn - sep - 2 : 0;
    switch (stem[0]) {
    case 'V':
    case 'U':
    case 'B':
        if (fw_version_ok(rest, sep))
            c.kind = stem[0] == 'V' ? K_FW_V : stem[0] == 'U' ? K_FW_U : K_FW_BASELINE;
        else if (stem[0] != 'B')
            c.why = "a Flyway version is digits separated by '.' or '_', then \"__\"";
        break;
    case 'R':
        if (sep == 0 || rn == 0)
            c.kind = K_FW_R;
        else
            c.why = "a Flyway repeatable is R__{desc}.sql, without a version";
        break;
    }
    return c;
}

/* Prisma: a directory named {timestamp}_{name}, timestamp digits. */
static bool prisma_name(const char *name)
{
    size_t d = strspn(name, MD_DIGITS);
    return d > 0 && name[d] == '_';
}

static bool is_golang(md_kind k)
{
    return k == K_GO_UP || k == K_GO_DOWN;
}

static bool is_flyway(md_kind k)
{
    return k == K_FW_V || k == K_FW_U || k == K_FW_R;
}

/* The error for a .sql file of kind K_NONE, K_FW_CALLBACK or K_FW_BASELINE. */
static bool fail_file(const char *path, const md_class *c, const char *dir, char *err,
                      size_t errlen)
{
    if (c->kind == K_FW_CALLBACK)
        return fail(err, errlen,
                    "file %s is a Flyway callback (beforeMigrate, afterMigrate, ...), which "
                    "pgcutover does not run: move it out of %s",
                    path, dir);
    if (c->kind == K_FW_BASELINE)
        return fail(err, errlen,
                    "file %s is a Flyway baseline migration (B prefix), which pgcutover does "
                    "not support: move it out of %s",
                    path, dir);
    return fail(err, errlen, "file %s fits no layout: " MD_WANTS "%s%s", path, c->why ? "; " : "",
                c->why ? c->why : "");
}

/* ---- migrations found ---------------------------------------------------------- */

typedef struct {
    md_kind kind;
    char *rel;     /* path relative to the migration directory */
    char *path;    /* the directory's path "/" rel */
    char *version; /* as written; "" for a repeatable */
    char *name;    /* as the tool shows it */
} md_item;

typedef struct {
    md_item *it;
    int n, cap;
} md_items;

static void items_free(md_items *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->it[i].rel);
        free(s->it[i].path);
        free(s->it[i].version);
        free(s->it[i].name);
    }
    free(s->it);
    memset(s, 0, sizeof *s);
}

static bool items_push(md_items *s, const char *dir, const char *rel, const md_class *c, char *err,
                       size_t errlen)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        md_item *it = realloc(s->it, (size_t)cap * sizeof *it);
        if (!it)
            return oom(err, errlen);
        s->it = it;
        s->cap = cap;
    }
    md_item *m = &s->it[s->n];
    m->kind = c->kind;
    m->rel = strdup(rel);
    m->path = join(dir, rel);
    m->version = dupn(c->kind == K_FW_R ? "" : c->ver, c->kind == K_FW_R ? 0 : c->verlen);
    m->name = dupn(c->title, c->titlelen);
    s->n++; /* counted even when partly allocated, so that items_free frees it */
    if (!m->rel || !m->path || !m->version || !m->name)
        return oom(err, errlen);
    if (is_flyway(c->kind))
        for (char *p = m->name; *p; p++)
            if (*p == '_')
                *p = ' ';
    return true;
}

/* Items in the layout's order: by version (Flyway repeatables, version "", last and by
 * description in Java's order), an up before its down, then by path — a total order,
 * so qsort's result does not depend on the order the files were found in. */
static int item_cmp(cli_md_layout layout, const md_item *a, const md_item *b)
{
    int c = a->kind == K_FW_R && b->kind == K_FW_R ? cmp_java(a->name, b->name)
                                                   : cli_md_compare(layout, a->version, b->version);
    if (!c)
        c = (a->kind > b->kind) - (a->kind < b->kind);
    return c ? c : strcmp(a->rel, b->rel);
}

/* qsort has no context argument: one comparator per layout (no global state). */
static int item_cmp_golang(const void *a, const void *b)
{
    return item_cmp(CLI_MD_GOLANG, a, b);
}

static int item_cmp_flyway(const void *a, const void *b)
{
    return item_cmp(CLI_MD_FLYWAY, a, b);
}

static void items_sort(md_items *s, cli_md_layout layout)
{
    if (s->n > 1)
        qsort(s->it, (size_t)s->n, sizeof *s->it,
              layout == CLI_MD_FLYWAY ? item_cmp_flyway : item_cmp_golang);
}

static bool emit(cli_md_dir *out, const md_item *up, const md_item *down, char *err, size_t errlen)
{
    cli_md_version *v = realloc(out->v, (size_t)(out->n + 1) * sizeof *v);
    if (!v)
        return oom(err, errlen);
    out->v = v;
    v = &out->v[out->n++];
    v->version = strdup(up->version);
    v->name = strdup(up->name);
    v->up_path = strdup(up->path);
    v->down_path = down ? strdup(down->path) : NULL;
    v->repeatable = up->kind == K_FW_R;
    if (!v->version || !v->name || !v->up_path || (down && !v->down_path))
        return oom(err, errlen);
    return true;
}

/* ---- golang-migrate ------------------------------------------------------------ */

/* A golang-migrate version as the number it is: "0010" -> "10", "000" -> "0". */
static const char *golang_number(const char *v)
{
    while (v[0] == '0' && v[1] >= '0' && v[1] <= '9')
        v++;
    return v;
}

static bool read_golang(const char *dir, const md_dents *top, cli_md_dir *out, char *err,
                        size_t errlen)
{
    md_items s = {0};
    bool ok = true;
    for (int i = 0; ok && i < top->n; i++) {
        const md_dent *e = &top->e[i];
        if (!e->is_reg || !ends_with(e->name, ".sql"))
            continue; /* golang-migrate skips directories */
        md_class c = classify_sql(e->name);
        ok = items_push(&s, dir, e->name, &c, err, errlen);
    }
    /* strconv.ParseUint(v, 10, 64): at most 20 digits after the zeros, and no more
     * than 18446744073709551615. */
    for (int i = 0; ok && i < s.n; i++) {
        const char *v = s.it[i].version;
        if (cmp_golang(v, "18446744073709551615") > 0)
            ok = fail(err, errlen,
                      "file %s: version %s is over 18446744073709551615 (2^64-1), the "
                      "largest golang-migrate reads",
                      s.it[i].path, v);
    }
    items_sort(&s, CLI_MD_GOLANG);
    for (int i = 0; ok && i < s.n;) {
        int j = i;
        while (j < s.n && cmp_golang(s.it[i].version, s.it[j].version) == 0)
            j++;
        /* [i, j): one version, ups first (each direction sorted by name). */
        const md_item *up = NULL, *down = NULL;
        for (int k = i; ok && k < j; k++) {
            const md_item *m = &s.it[k];
            const md_item **slot = m->kind == K_GO_UP ? &up : &down;
            if (*slot)
                ok = fail(err, errlen, "%s and %s are both the %s migration of version %s",
                          (*slot)->path, m->path, m->kind == K_GO_UP ? "up" : "down",
                          golang_number(m->version));
            else
                *slot = m;
        }
        if (ok && !up)
            ok = fail(err, errlen,
                      "file %s is the down migration of version %s, which has no up "
                      "migration ({version}_{title}.up.sql)",
                      down->path, golang_number(down->version));
        if (ok)
            ok = emit(out, up, down, err, errlen);
        i = j;
    }
    items_free(&s);
    return ok;
}

/* ---- Flyway -------------------------------------------------------------------- */

typedef struct {
    const char *dir;
    md_items s;
    char *bad; /* first .sql file (relative) that fits no layout / is refused */
    char *go;  /* first golang-migrate file met (relative) */
} fw_walk;

/* Collects the Flyway files of dir/rel and its subdirectories (Flyway scans its
 * locations recursively), depth first in name order. */
static bool fw_walk_dir(fw_walk *w, const char *rel, int depth, char *err, size_t errlen)
{
    char *path = rel[0] ? join(w->dir, rel) : strdup(w->dir);
    if (!path)
        return oom(err, errlen);
    md_dents ents;
    bool ok = list_dir(path, &ents, err, errlen);
    for (int i = 0; ok && i < ents.n; i++) {
        const md_dent *e = &ents.e[i];
        char *erel = rel[0] ? join(rel, e->name) : strdup(e->name);
        if (!erel) {
            ok = oom(err, errlen);
            break;
        }
        if (e->is_dir) {
            if (depth + 1 > MD_MAX_DEPTH)
                ok = fail(err, errlen,
                          "%s/%s: subdirectories nest deeper than %d (a symbolic link loop?)", path,
                          e->name, MD_MAX_DEPTH);
            else
                ok = fw_walk_dir(w, erel, depth + 1, err, errlen);
        } else if (e->is_reg && ends_with(e->name, ".sql")) {
            md_class c = classify_sql(e->name);
            if (is_flyway(c.kind))
                ok = items_push(&w->s, w->dir, erel, &c, err, errlen);
            else if (is_golang(c.kind) && !w->go)
                w->go = erel, erel = NULL;
            else if (!is_golang(c.kind) && !w->bad)
                w->bad = erel, erel = NULL;
        }
        free(erel);
    }
    dents_free(&ents);
    free(path);
    return ok;
}

/* Items [from, to) of one kind, sorted: two of an equal version (description, for
 * repeatables) are an error naming both. */
static bool fw_unique(const md_items *s, int from, int to, const char *what, char *err,
                      size_t errlen)
{
    for (int i = from + 1; i < to; i++) {
        const md_item *a = &s->it[i - 1], *b = &s->it[i];
        bool same = a->kind == K_FW_R ? strcmp(a->name, b->name) == 0
                                      : cmp_flyway(a->version, b->version) == 0;
        if (same)
            return fail(err, errlen, "%s and %s are both the %s %s \"%s\"", a->path, b->path, what,
                        a->kind == K_FW_R ? "with description" : "of version",
                        a->kind == K_FW_R ? a->name : a->version);
    }
    return true;
}

/* The Flyway files of dir and its subdirectories. found: false when there are none
 * (out untouched). */
static bool read_flyway(const char *dir, cli_md_dir *out, bool *found, char *err, size_t errlen)
{
    fw_walk w = {.dir = dir};
    bool ok = fw_walk_dir(&w, "", 0, err, errlen);
    *found = ok && w.s.n > 0;
    if (!*found)
        goto done;
    out->layout = CLI_MD_FLYWAY;
    if (w.bad) {
        const char *slash = strrchr(w.bad, '/');
        md_class c = classify_sql(slash ? slash + 1 : w.bad);
        char *p = join(dir, w.bad);
        ok = p ? fail_file(p, &c, dir, err, errlen) : oom(err, errlen);
        free(p);
    } else if (w.go) {
        ok = fail(err, errlen, "%s mixes migration layouts: golang-migrate (%s) and Flyway (%s)",
                  dir, w.go, w.s.it[0].rel);
    }
    if (!ok)
        goto done;

    /* Versions in Flyway's order (an undo after the versioned file of its version,
     * repeatables last by description), then split into the three kinds, each still
     * in that order. */
    items_sort(&w.s, CLI_MD_FLYWAY);
    md_items byk = {0};
    byk.it = malloc((size_t)w.s.n * sizeof *byk.it);
    const md_item **down = calloc((size_t)w.s.n, sizeof *down);
    if (!byk.it || !down) {
        free(byk.it);
        free(down);
        ok = oom(err, errlen);
        goto done;
    }
    int cnt[3] = {0};
    for (md_kind k = K_FW_V; k <= K_FW_R; k++)
        for (int i = 0; i < w.s.n; i++)
            if (w.s.it[i].kind == k)
                byk.it[byk.n++] = w.s.it[i], cnt[k - K_FW_V]++;
    int nv = cnt[0], nu = cnt[1], nr = cnt[2];
    const md_item *V = byk.it, *U = byk.it + nv, *R = byk.it + nv + nu;
    ok = fw_unique(&byk, 0, nv, "versioned migration", err, errlen) &&
         fw_unique(&byk, nv, nv + nu, "undo migration", err, errlen) &&
         fw_unique(&byk, nv + nu, nv + nu + nr, "repeatable migration", err, errlen);
    for (int u = 0, v = 0; ok && u < nu; u++) {
        while (v < nv && cmp_flyway(V[v].version, U[u].version) < 0)
            v++;
        if (v < nv && cmp_flyway(V[v].version, U[u].version) == 0)
            down[v] = &U[u];
        else
            ok = fail(err, errlen,
                      "file %s undoes version %s, which has no versioned migration "
                      "(V%s__{desc}.sql)",
                      U[u].path, U[u].version, U[u].version);
    }
    for (int v = 0; ok && v < nv; v++)
        ok = emit(out, &V[v], down[v], err, errlen);
    for (int r = 0; ok && r < nr; r++)
        ok = emit(out, &R[r], NULL, err, errlen);
    free(down);
    free(byk.it); /* a shallow copy: its strings belong to w.s */
done:
    items_free(&w.s);
    free(w.bad);
    free(w.go);
    return ok;
}

/* ---- Prisma -------------------------------------------------------------------- */

/* Whether dir/name/migration.sql is a regular file (following links); why not in
 * *why: an errno, or EINVAL for something that is not a regular file. */
static bool prisma_script(const char *dir, const char *name, int *why, char *err, size_t errlen,
                          bool *ok)
{
    char *sub = join(dir, name);
    char *file = sub ? join(sub, "migration.sql") : NULL;
    struct stat st;
    *why = 0;
    if (!file)
        *ok = oom(err, errlen);
    else if (stat(file, &st) != 0)
        *why = errno;
    else if (!S_ISREG(st.st_mode))
        *why = EINVAL;
    free(file);
    free(sub);
    return *ok && *why == 0;
}

/* Every subdirectory is a migration, in name order (byte-wise, as listed). */
static bool read_prisma(const char *dir, const md_dents *top, cli_md_dir *out, char *err,
                        size_t errlen)
{
    out->layout = CLI_MD_PRISMA;
    bool ok = true;
    for (int i = 0; ok && i < top->n; i++) {
        const md_dent *e = &top->e[i];
        if (!e->is_dir)
            continue; /* migration_lock.toml, README.md; .sql files were checked */
        int why;
        if (!prisma_name(e->name))
            ok = fail(err, errlen, "directory %s/%s fits no layout: " MD_WANTS, dir, e->name);
        else if (!prisma_script(dir, e->name, &why, err, errlen, &ok)) {
            if (ok)
                ok = fail(err, errlen, "Prisma migration directory %s/%s has no migration.sql: %s",
                          dir, e->name, why == EINVAL ? "not a regular file" : strerror(why));
        } else {
            char *sub = join(dir, e->name);
            md_item m = {.kind = K_NONE, .version = e->name};
            m.name = e->name + strspn(e->name, MD_DIGITS) + 1;
            m.path = sub ? join(sub, "migration.sql") : NULL;
            ok = m.path ? emit(out, &m, NULL, err, errlen) : oom(err, errlen);
            free(m.path);
            free(sub);
        }
    }
    return ok;
}

/* ---- the directory ------------------------------------------------------------- */

bool cli_md_read(const char *dir, cli_md_dir *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->layout = CLI_MD_GOLANG;
    if (err && errlen)
        err[0] = '\0';
    md_dents top;
    if (!list_dir(dir, &top, err, errlen))
        return false;

    /* The layouts the top-level names belong to, with the first name of each (in name
     * order) for an error. A {digits}_{name} subdirectory is Prisma's when it holds
     * migration.sql; without, it may be a Flyway subfolder ("2024_q1/") or a folder
     * golang-migrate skips, so it decides nothing unless nothing else does. */
    const char *go = NULL, *fw = NULL, *pr = NULL, *pr_weak = NULL;
    bool ok = true;
    for (int i = 0; ok && i < top.n; i++) {
        const md_dent *e = &top.e[i];
        if (e->is_dir) {
            int why;
            if (!prisma_name(e->name) || pr)
                continue;
            if (prisma_script(dir, e->name, &why, err, errlen, &ok))
                pr = e->name;
            else if (!pr_weak)
                pr_weak = e->name;
            continue;
        }
        if (!e->is_reg || !ends_with(e->name, ".sql"))
            continue;
        md_class c = classify_sql(e->name);
        if (is_golang(c.kind)) {
            go = go ? go : e->name;
        } else if (is_flyway(c.kind)) {
            fw = fw ? fw : e->name;
        } else {
            char *p = join(dir, e->name);
            ok = p ? fail_file(p, &c, dir, err, errlen) : oom(err, errlen);
            free(p);
        }
    }
    if (ok && (!!go + !!fw + !!pr) > 1) {
        char list[3][300];
        int k = 0;
        if (go)
            snprintf(list[k++], sizeof list[0], "golang-migrate (%s)", go);
        if (fw)
            snprintf(list[k++], sizeof list[0], "Flyway (%s)", fw);
        if (pr)
            snprintf(list[k++], sizeof list[0], "Prisma (%s/migration.sql)", pr);
        ok = fail(err, errlen, "%s mixes migration layouts: %s and %s%s%s", dir, list[0], list[1],
                  k > 2 ? " and " : "", k > 2 ? list[2] : "");
    }
    if (ok) {
        bool found = true;
        if (pr)
            ok = read_prisma(dir, &top, out, err, errlen);
        else if (go)
            ok = read_golang(dir, &top, out, err, errlen);
        else if ((ok = read_flyway(dir, out, &found, err, errlen)) && !found && pr_weak)
            ok = read_prisma(dir, &top, out, err, errlen); /* names what is missing */
        /* else: nothing anywhere, an empty golang-migrate directory */
    }
    dents_free(&top);
    if (!ok) {
        cli_md_free(out);
        out->layout = CLI_MD_GOLANG;
    }
    return ok;
}

void cli_md_free(cli_md_dir *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        free(d->v[i].version);
        free(d->v[i].name);
        free(d->v[i].up_path);
        free(d->v[i].down_path);
    }
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

int cli_md_find(const cli_md_dir *d, const char *version)
{
    for (int i = 0; d && version && i < d->n; i++)
        if (!d->v[i].repeatable && cli_md_compare(d->layout, d->v[i].version, version) == 0)
            return i;
    return -1;
}

const char *cli_md_layout_name(cli_md_layout layout)
{
    switch (layout) {
    case CLI_MD_GOLANG:
        return "golang-migrate";
    case CLI_MD_FLYWAY:
        return "flyway";
    case CLI_MD_PRISMA:
        return "prisma";
    }
    return "?";
}

bool cli_md_read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "cannot read %s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "cannot read %s: %s", path, strerror(EISDIR));
    }
    /* The size is a hint only: the file may grow or shrink while it is read. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return oom(err, errlen);
        }
        if (n + 1 >= cap) {
            char *b = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
            continue;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return fail(err, errlen, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return true;
}
