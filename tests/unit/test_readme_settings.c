/*
 * test_readme_settings.c — README.md's "## Settings" table lists every row of
 * conf_settings, in table order, with the same name, default, reloadability and doc,
 * and nothing else, so the README cannot drift from conf/conf.c.
 *
 * The table has four columns: `name` (a code span), the default (a code span, or an
 * empty cell for the empty string), yes/no (reloadable), the doc (Markdown: a
 * backslash before ASCII punctuation is an escape, and \ | < > * ` [ ] must be
 * escaped, e.g. \<port\>). A failure prints the row as it should read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#ifndef PGC_SOURCE_DIR
#error "PGC_SOURCE_DIR must name the source tree (tests/CMakeLists.txt defines it)"
#endif

#define NCOLS 4
#define CELL 1024

static void fmt(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    long len;
    char *buf;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return buf;
}

/* doc as a Markdown table cell: a backslash before \ | < > * ` [ ] (so that
 * ".s.PGSQL.<port>" is not taken for HTML and a pipe does not end the cell). */
static void escape_doc(const char *doc, char *out, size_t len)
{
    size_t n = 0;

    for (const char *p = doc; *p != '\0' && n + 3 < len; p++) {
        if (strchr("\\|<>*`[]", *p) != NULL)
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n] = '\0';
}

/* The Markdown row of s as the README should have it. */
static void expected_row(const conf_setting *s, char *buf, size_t len)
{
    char doc[CELL];

    escape_doc(s->doc, doc, sizeof(doc));
    fmt(buf, len, "| `%s` | %s%s%s | %s | %s |", s->name, s->default_value[0] ? "`" : "",
        s->default_value, s->default_value[0] ? "`" : "", s->reloadable ? "yes" : "no", doc);
}

/* The next line of *p (without "\n" or "\r\n"); false at the end of the text. */
static bool next_line(const char **p, const char **line, size_t *n)
{
    const char *nl;

    if (**p == '\0')
        return false;
    nl = strchr(*p, '\n');
    *line = *p;
    *n = nl != NULL ? (size_t)(nl - *p) : strlen(*p);
    *p = nl != NULL ? nl + 1 : *p + *n;
    if (*n > 0 && (*line)[*n - 1] == '\r')
        (*n)--;
    return true;
}

static bool line_is(const char *line, size_t n, const char *want)
{
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return n == strlen(want) && memcmp(line, want, n) == 0;
}

static void trim_into(char *dst, const char *src, size_t n)
{
    while (n > 0 && isspace((unsigned char)*src)) {
        src++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)src[n - 1]))
        n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Split a table line ("| a | b |", trailing pipe optional) into trimmed cells; an
 * escaped pipe (\|) stays in its cell, escapes are kept. Returns the number of cells,
 * or -1 when there are more than max or one is longer than CELL - 1.
 */
static int split_cells(const char *line, size_t n, char cells[][CELL], int max)
{
    size_t i = 1, start = 1;
    int nc = 0;

    if (n == 0 || line[0] != '|')
        return -1;
    for (; i <= n; i++) {
        bool end = i == n;

        if (!end && line[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (end || line[i] == '|') {
            size_t len = i - start;
            char tmp[CELL];

            if (len >= CELL || nc == max)
                return -1;
            trim_into(tmp, line + start, len);
            if (end && tmp[0] == '\0')
                break; /* nothing after the trailing pipe */
            memcpy(cells[nc++], tmp, strlen(tmp) + 1);
            start = i + 1;
        }
    }
    return nc;
}

/* Markdown backslash escapes: "\" before ASCII punctuation stands for that character. */
static void unescape(const char *in, char *out)
{
    while (*in != '\0') {
        if (in[0] == '\\' && in[1] != '\0' && ispunct((unsigned char)in[1]))
            in++;
        *out++ = *in++;
    }
    *out = '\0';
}

/* A cell that is one code span `x` (x without backticks) into out; false otherwise. */
static bool code_span(const char *cell, char *out)
{
    size_t n = strlen(cell);

    if (n < 2 || cell[0] != '`' || cell[n - 1] != '`' || memchr(cell + 1, '`', n - 2) != NULL)
        return false;
    memcpy(out, cell + 1, n - 2);
    out[n - 2] = '\0';
    return true;
}

static bool separator_cell(const char *c)
{
    size_t n = strlen(c);

    if (n > 0 && c[0] == ':')
        c++, n--;
    if (n > 0 && c[n - 1] == ':')
        n--;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (c[i] != '-')
            return false;
    return true;
}

/* Compare table row `row` (1-based) with setting s; false with the reason in err. */
static bool check_row(int row, char cells[][CELL], int nc, const conf_setting *s, char *err,
                      size_t errlen)
{
    char want[2048], v[CELL];
    const char *what = NULL;

    expected_row(s, want, sizeof(want));
    if (nc != NCOLS)
        what = "not 4 cells";
    else if (!code_span(cells[0], v) || strcmp(v, s->name) != 0)
        what = "another setting here (order or name)";
    else if (cells[1][0] != '\0' ? !code_span(cells[1], v) || strcmp(v, s->default_value) != 0
                                 : s->default_value[0] != '\0')
        what = "default";
    else if (strcmp(cells[2], s->reloadable ? "yes" : "no") != 0)
        what = "reloadable (yes/no)";
    if (what == NULL) {
        unescape(cells[3], v);
        if (strcmp(v, s->doc) != 0)
            what = "description";
    }
    if (what == NULL) {
        escape_doc(s->doc, v, sizeof(v));
        if (strcmp(v, cells[3]) != 0)
            what = "description's Markdown escapes (\\< \\> \\| \\* \\` \\[ \\] \\\\)";
    }
    if (what == NULL)
        return true;
    fmt(err, errlen,
        "README.md Settings row %d (setting %d of conf_settings, %s) differs: %s\n"
        "  expected: %s",
        row, row, s->name, what, want);
    return false;
}

/* "# …" or "## …": the end of the Settings section ("### …" is inside it). */
static bool is_top_heading(const char *line, size_t n)
{
    return (n >= 2 && line[0] == '#' && line[1] == ' ') ||
           (n >= 3 && line[0] == '#' && line[1] == '#' && line[2] == ' ');
}

/* Check a README text; false with the first difference in err. */
static bool check_readme(const char *text, char *err, size_t errlen)
{
    const char *p = text, *line, *section = NULL;
    size_t n;
    int headings = 0, row = 0, state = 0; /* 0 before the table, 1 in its rows, 2 after it */
    char cells[NCOLS + 4][CELL];

    while (next_line(&p, &line, &n))
        if (line_is(line, n, "## Settings")) {
            headings++;
            section = p;
        }
    if (headings != 1) {
        fmt(err, errlen, "README.md has %d \"## Settings\" headings, expected 1", headings);
        return false;
    }
    p = section;
    while (next_line(&p, &line, &n)) {
        int nc;

        if (is_top_heading(line, n))
            break;
        if (n == 0 || line[0] != '|') {
            if (state == 1)
                state = 2;
            continue;
        }
        if (state == 2) {
            fmt(err, errlen, "README.md Settings section has a second table: %.*s", (int)n, line);
            return false;
        }
        nc = split_cells(line, n, cells, NCOLS + 4);
        if (state == 0) {
            if (nc != NCOLS) {
                fmt(err, errlen, "README.md Settings table header has %d cells, expected %d: %.*s",
                    nc, NCOLS, (int)n, line);
                return false;
            }
            if (!next_line(&p, &line, &n) || split_cells(line, n, cells, NCOLS + 4) != NCOLS ||
                !separator_cell(cells[0]) || !separator_cell(cells[1]) ||
                !separator_cell(cells[2]) || !separator_cell(cells[3])) {
                fmt(err, errlen,
                    "README.md Settings table: no |---|---|---|---| line after the "
                    "header");
                return false;
            }
            state = 1;
            continue;
        }
        row++;
        if (row > conf_nsettings) {
            fmt(err, errlen, "README.md Settings row %d is extra (conf_settings has %d rows): %.*s",
                row, conf_nsettings, (int)n, line);
            return false;
        }
        if (!check_row(row, cells, nc, &conf_settings[row - 1], err, errlen))
            return false;
    }
    if (state == 0) {
        fmt(err, errlen, "README.md Settings section has no table");
        return false;
    }
    if (row < conf_nsettings) {
        char want[2048];

        expected_row(&conf_settings[row], want, sizeof(want));
        fmt(err, errlen,
            "README.md Settings table has %d rows, conf_settings %d; next missing row:\n"
            "  expected: %s",
            row, conf_nsettings, want);
        return false;
    }
    return true;
}

static void test_readme_matches_table(void **state)
{
    char *text = read_all(PGC_SOURCE_DIR "/README.md");
    char err[4096] = "";
    bool ok;

    (void)state;
    ok = check_readme(text, err, sizeof(err));
    free(text);
    if (!ok)
        fail_msg("%s", err);
}

/* A README around the rows of the table, with one change (mode) at row k. */
enum {
    M_NONE,
    M_DEFAULT,
    M_DOC,
    M_RELOAD,
    M_SWAP,
    M_DROP,
    M_EXTRA,
    M_SECOND_TABLE,
    M_NO_HEADING,
    M_RAW_DOC
};

static char *synthetic(int mode, int k)
{
    size_t cap = 65536, used = 0;
    char *buf = malloc(cap);

    assert_non_null(buf);
#define ADD(...)                                                                                   \
    (used += (size_t)snprintf(buf + used, cap - used, __VA_ARGS__), assert_true(used < cap))
    ADD("# pgcutover\n\n%s\n\nText.\n\n| setting | default | reloadable | description |\n"
        "|---|:--|---|---|\n",
        mode == M_NO_HEADING ? "## Setting" : "## Settings");
    for (int i = 0; i < conf_nsettings; i++) {
        conf_setting s = conf_settings[i];
        char row[2048], tmp[CELL];

        if (mode == M_DROP && i == k)
            continue;
        if (mode == M_SWAP && (i == k || i == k + 1))
            s = conf_settings[i == k ? k + 1 : k];
        if (i == k && mode == M_DEFAULT) {
            snprintf(tmp, sizeof(tmp), "%s9", s.default_value);
            s.default_value = tmp;
        } else if (i == k && mode == M_DOC) {
            snprintf(tmp, sizeof(tmp), "%.*s", (int)strlen(s.doc) - 1, s.doc);
            s.doc = tmp;
        } else if (i == k && mode == M_RELOAD) {
            s.reloadable = !s.reloadable;
        }
        if (i == k && mode == M_RAW_DOC) /* the doc without its escapes */
            snprintf(row, sizeof(row), "| `%s` | %s%s%s | %s | %s |", s.name,
                     s.default_value[0] ? "`" : "", s.default_value, s.default_value[0] ? "`" : "",
                     s.reloadable ? "yes" : "no", s.doc);
        else
            expected_row(&s, row, sizeof(row));
        ADD("%s\n", row);
    }
    if (mode == M_EXTRA)
        ADD("| `extra_setting` | `1` | yes | Not in the table. |\n");
    if (mode == M_SECOND_TABLE)
        ADD("\n| a | b |\n|---|---|\n| 1 | 2 |\n");
    ADD("\n## Benchmarks\n\n| mode | tps |\n|---|---|\n| simple | 1 |\n");
#undef ADD
    return buf;
}

static void check_variant(int mode, int k, bool ok, const char *needle)
{
    char *text = synthetic(mode, k);
    char err[4096] = "";
    bool got = check_readme(text, err, sizeof(err));

    free(text);
    if (got != ok)
        fail_msg("mode %d row %d: check_readme returned %d (%s)", mode, k, got, err);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("mode %d row %d: \"%s\" not in: %s", mode, k, needle, err);
}

/* The checker itself: the generated table passes, every kind of drift fails. */
static void test_checker_catches_drift(void **state)
{
    (void)state;
    check_variant(M_NONE, -1, true, NULL);
    for (int k = 0; k < conf_nsettings; k++) {
        check_variant(M_DEFAULT, k, false, "default");
        check_variant(M_DOC, k, false, "description");
        check_variant(M_RELOAD, k, false, "reloadable");
        check_variant(M_DROP, k, false, k + 1 == conf_nsettings ? "next missing row" : "order");
    }
    for (int k = 0; k + 1 < conf_nsettings; k++)
        check_variant(M_SWAP, k, false, "order");
    for (int k = 0; k < conf_nsettings; k++) /* "<port>", "*": escapes missing */
        if (strpbrk(conf_settings[k].doc, "\\<>*`[]") != NULL)
            check_variant(M_RAW_DOC, k, false, "escapes");
    check_variant(M_EXTRA, -1, false, "extra");
    check_variant(M_SECOND_TABLE, -1, false, "second table");
    check_variant(M_NO_HEADING, -1, false, "headings");
}

/* Cells: escaped pipes stay in their cell, escapes are undone, no trailing pipe is fine. */
static void test_cells(void **state)
{
    char cells[8][CELL], v[CELL];
    const char *l1 = "| `a` |  | yes | x \\| y \\<port\\> \"\\*\" |";
    const char *l2 = "|`b`|`1GB`|no|doc";

    (void)state;
    assert_int_equal(split_cells(l1, strlen(l1), cells, 8), 4);
    assert_string_equal(cells[0], "`a`");
    assert_string_equal(cells[1], "");
    unescape(cells[3], v);
    assert_string_equal(v, "x | y <port> \"*\"");
    assert_int_equal(split_cells(l2, strlen(l2), cells, 8), 4);
    assert_true(code_span(cells[1], v));
    assert_string_equal(v, "1GB");
    assert_string_equal(cells[3], "doc");
    assert_false(code_span("`a`b`", v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_checker_catches_drift),
        cmocka_unit_test(test_readme_matches_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
