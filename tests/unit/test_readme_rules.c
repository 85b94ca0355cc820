/*
 * test_readme_rules.c — README.md's table of PLAN's warning rules (under "Strategies")
 * has a row for every rule the code can emit (osc_warn_rules: every warning is formatted
 * from that table), with the same id and name, and no row for an id the code lacks, so
 * the README cannot drift from shadow/osc_warn.c.
 *
 * A row reads "| `PGC001` | destructive | … | … |".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_warn.h"

#ifndef PGC_SOURCE_DIR
#error "PGC_SOURCE_DIR must name the source tree (tests/CMakeLists.txt defines it)"
#endif

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return buf;
}

static void test_rules_listed(void **state)
{
    (void)state;
    char *readme = read_all(PGC_SOURCE_DIR "/README.md");
    int n;
    const osc_warn_rule_def *rules = osc_warn_rules(&n);
    assert_int_equal(n, OSC_WARN_NRULES);
    for (int i = 0; i < n; i++) {
        char row[160];
        snprintf(row, sizeof row, "\n| `%s` | %s |", rules[i].id, rules[i].name);
        if (strstr(readme, row) == NULL)
            fail_msg("README.md lacks the rule row starting \"%s\"", row + 1);
    }
    /* every id README lists is one the code has */
    int listed = 0;
    for (const char *p = strstr(readme, "\n| `PGC"); p; p = strstr(p + 1, "\n| `PGC")) {
        char id[8];
        snprintf(id, sizeof id, "%.6s", p + 4);
        bool known = false;
        for (int i = 0; i < n; i++)
            known |= strcmp(rules[i].id, id) == 0;
        if (!known)
            fail_msg("README.md lists rule %s, which shadow/osc_warn.c does not have", id);
        listed++;
    }
    assert_int_equal(listed, n);
    free(readme);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rules_listed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
