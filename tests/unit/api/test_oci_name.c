/* Unit tests for api/oci_name.c: name and tag grammar, Range and
 * Content-Range parsing.  Table driven: each row is one input and the
 * exact outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/oci.h"

/* ------------------------------------------------------------------ names */

struct name_case {
    const char *name;
    bool valid;
};

static const struct name_case name_cases[] = {
    {"a", true},
    {"0", true},
    {"library/ubuntu", true},
    {"a/b/c", true},
    {"a.b", true},
    {"a_b", true},
    {"a__b", true},
    {"a-b", true},
    {"a--b", true},
    {"a---b", true},
    {"a0/b-1.c_d/e__f", true},
    {"my-org/my.app/v2", true},
    {"", false},
    {"A", false},
    {"Abc", false},
    {"a/B", false},
    {"a..b", false},
    {"a___b", false},
    {"a._b", false},
    {"a_.b", false},
    {"a-.b", false},
    {"a.-b", false},
    {"-a", false},
    {"a-", false},
    {".a", false},
    {"a.", false},
    {"_a", false},
    {"a_", false},
    {"/a", false},
    {"a/", false},
    {"/", false},
    {"a//b", false},
    {"a/-b", false},
    {"a/b./c", false},
    {"a b", false},
    {"a:b", false},
    {"a@b", false},
    {"a\tb", false},
    {"ä", false},
};

static void test_name_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const struct name_case *c = &name_cases[i];
        bool got = oci_name_valid(c->name, strlen(c->name));
        if (got != c->valid)
            fail_msg("oci_name_valid('%s') = %d, want %d", c->name, got,
                     c->valid);
    }
}

static void test_name_length(void **state)
{
    char buf[OCI_NAME_MAX + 2];
    (void)state;

    memset(buf, 'a', sizeof buf);
    assert_true(oci_name_valid(buf, OCI_NAME_MAX));
    assert_false(oci_name_valid(buf, OCI_NAME_MAX + 1));

    /* 255 bytes made of many components: "a/a/.../a". */
    for (size_t i = 0; i < OCI_NAME_MAX; i++)
        buf[i] = i % 2 ? '/' : 'a';
    assert_true(oci_name_valid(buf, OCI_NAME_MAX));
    buf[OCI_NAME_MAX] = '/';
    assert_false(oci_name_valid(buf, OCI_NAME_MAX + 1));
}

static void test_name_bounded_by_len(void **state)
{
    (void)state;
    /* Only len bytes count: the rest may be anything. */
    assert_true(oci_name_valid("abc/", 3));
    assert_true(oci_name_valid("a/bXYZ", 3));
    assert_false(oci_name_valid("abc", 0));
    assert_false(oci_name_valid(NULL, 0));
    /* An embedded NUL is not part of the grammar. */
    assert_false(oci_name_valid("a\0b", 3));
}

/* ------------------------------------------------------------------- tags */

struct tag_case {
    const char *tag;
    bool valid;
};

static const struct tag_case tag_cases[] = {
    {"latest", true},
    {"v1.0.0", true},
    {"1", true},
    {"A", true},
    {"_x", true},
    {"a-b_c.D", true},
    {"sha256-0123abcd.sig", true},
    {"", false},
    {".a", false},
    {"-a", false},
    {"a/b", false},
    {"a:b", false},
    {"a+b", false},
    {"a b", false},
    {"a@b", false},
    {"é", false},
};

static void test_tag_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tag_cases / sizeof tag_cases[0]; i++) {
        const struct tag_case *c = &tag_cases[i];
        bool got = oci_tag_valid(c->tag, strlen(c->tag));
        if (got != c->valid)
            fail_msg("oci_tag_valid('%s') = %d, want %d", c->tag, got,
                     c->valid);
    }
}

static void test_tag_length(void **state)
{
    char buf[OCI_TAG_MAX + 1];
    (void)state;

    memset(buf, 'T', sizeof buf);
    assert_true(oci_tag_valid(buf, OCI_TAG_MAX));
    assert_false(oci_tag_valid(buf, OCI_TAG_MAX + 1));
    assert_true(oci_tag_valid("v1:junk", 2));
    assert_false(oci_tag_valid("a\0b", 3));
    assert_false(oci_tag_valid(NULL, 0));
}

/* ----------------------------------------------------------------- Range */

struct range_case {
    const char *hdr;
    uint64_t size;
    int rv;
    uint64_t first;
    uint64_t last;
};

static const struct range_case range_cases[] = {
    /* Satisfiable. */
    {"bytes=0-0", 10, SH_OK, 0, 0},
    {"bytes=0-9", 10, SH_OK, 0, 9},
    {"bytes=2-5", 10, SH_OK, 2, 5},
    {"bytes=9-9", 10, SH_OK, 9, 9},
    {"bytes=0-99", 10, SH_OK, 0, 9},
    {"bytes=5-", 10, SH_OK, 5, 9},
    {"bytes=0-", 10, SH_OK, 0, 9},
    {"bytes=-3", 10, SH_OK, 7, 9},
    {"bytes=-10", 10, SH_OK, 0, 9},
    {"bytes=-11", 10, SH_OK, 0, 9},
    {"bytes=-100", 10, SH_OK, 0, 9},
    {"bytes=-1", 1, SH_OK, 0, 0},
    {"Bytes=1-2", 10, SH_OK, 1, 2},
    {"BYTES=1-2", 10, SH_OK, 1, 2},
    {" bytes=1-2\t", 10, SH_OK, 1, 2},
    {"bytes=1-2,", 10, SH_OK, 1, 2},
    {"bytes=, 1-2 ,", 10, SH_OK, 1, 2},
    {"bytes=0000000000000000001-", 10, SH_OK, 1, 9},
    {"bytes=9999999999999999999-", UINT64_MAX, SH_OK, 9999999999999999999u,
     UINT64_MAX - 1},
    {"bytes=-9999999999999999999", UINT64_MAX, SH_OK,
     UINT64_MAX - 9999999999999999999u, UINT64_MAX - 1},
    {"bytes=0-9999999999999999999", 10, SH_OK, 0, 9},
    /* Unsatisfiable: 416. */
    {"bytes=10-", 10, SH_ERANGE, 0, 0},
    {"bytes=10-20", 10, SH_ERANGE, 0, 0},
    {"bytes=11-11", 10, SH_ERANGE, 0, 0},
    {"bytes=-0", 10, SH_ERANGE, 0, 0},
    {"bytes=9999999999999999999-", 10, SH_ERANGE, 0, 0},
    {"bytes=0-0", 0, SH_ERANGE, 0, 0},
    {"bytes=0-", 0, SH_ERANGE, 0, 0},
    {"bytes=-1", 0, SH_ERANGE, 0, 0},
    {"bytes=-0", 0, SH_ERANGE, 0, 0},
    /* Not understood: serve the whole blob. */
    {"", 10, SH_EMALFORMED, 0, 0},
    {"bytes", 10, SH_EMALFORMED, 0, 0},
    {"bytes=", 10, SH_EMALFORMED, 0, 0},
    {"bytes=,", 10, SH_EMALFORMED, 0, 0},
    {"bytes=-", 10, SH_EMALFORMED, 0, 0},
    {"bytes=abc", 10, SH_EMALFORMED, 0, 0},
    {"bytes=5-4", 10, SH_EMALFORMED, 0, 0},
    {"bytes=5-4", 0, SH_EMALFORMED, 0, 0},
    {"bytes=1-2-3", 10, SH_EMALFORMED, 0, 0},
    {"bytes=1--2", 10, SH_EMALFORMED, 0, 0},
    {"bytes=0-1,3-4", 10, SH_EMALFORMED, 0, 0},
    {"bytes=0-1, 3-4", 10, SH_EMALFORMED, 0, 0},
    {"bytes=+1-2", 10, SH_EMALFORMED, 0, 0},
    {"bytes=0x1-2", 10, SH_EMALFORMED, 0, 0},
    {"bytes=1 -2", 10, SH_EMALFORMED, 0, 0},
    {"bytes=1- 2", 10, SH_EMALFORMED, 0, 0},
    {"bytes =1-2", 10, SH_EMALFORMED, 0, 0},
    {"bytes 1-2", 10, SH_EMALFORMED, 0, 0},
    {"items=1-2", 10, SH_EMALFORMED, 0, 0},
    {"1-2", 10, SH_EMALFORMED, 0, 0},
    {"bytes=-1-", 10, SH_EMALFORMED, 0, 0},
    {"bytes=1-2;", 10, SH_EMALFORMED, 0, 0},
    /* More than 19 digits is never a number we accept. */
    {"bytes=99999999999999999999-", UINT64_MAX, SH_EMALFORMED, 0, 0},
    {"bytes=00000000000000000001-", 10, SH_EMALFORMED, 0, 0},
    {"bytes=0-18446744073709551615", 10, SH_EMALFORMED, 0, 0},
    {"bytes=-18446744073709551616", 10, SH_EMALFORMED, 0, 0},
    {"bytes=-00000000000000000000", 0, SH_EMALFORMED, 0, 0},
};

static void test_range_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof range_cases / sizeof range_cases[0]; i++) {
        const struct range_case *c = &range_cases[i];
        uint64_t first = 77;
        uint64_t last = 88;
        int rv = oci_range_parse(c->hdr, c->size, &first, &last);
        if (rv != c->rv)
            fail_msg("oci_range_parse('%s', %llu) = %d, want %d", c->hdr,
                     (unsigned long long)c->size, rv, c->rv);
        if (rv == SH_OK && (first != c->first || last != c->last))
            fail_msg(
                "oci_range_parse('%s', %llu) = [%llu, %llu], want "
                "[%llu, %llu]",
                c->hdr, (unsigned long long)c->size, (unsigned long long)first,
                (unsigned long long)last, (unsigned long long)c->first,
                (unsigned long long)c->last);
        /* Bad input changes nothing. */
        if (rv != SH_OK && (first != 77 || last != 88))
            fail_msg("oci_range_parse('%s') wrote its outputs on error",
                     c->hdr);
    }
}

static void test_range_null(void **state)
{
    uint64_t first = 1;
    uint64_t last = 2;
    (void)state;
    assert_int_equal(oci_range_parse(NULL, 10, &first, &last), SH_EMALFORMED);
    assert_int_equal(first, 1);
    assert_int_equal(last, 2);
}

/* --------------------------------------------------------- Content-Range */

struct content_range_case {
    const char *hdr;
    int rv;
    uint64_t first;
    uint64_t last;
};

static const struct content_range_case content_range_cases[] = {
    {"0-1023", SH_OK, 0, 1023},
    {"1024-2047", SH_OK, 1024, 2047},
    {"0-0", SH_OK, 0, 0},
    {"5-5", SH_OK, 5, 5},
    {" 0-10 ", SH_OK, 0, 10},
    {"bytes 0-1023/2048", SH_OK, 0, 1023},
    {"bytes 0-1023/1024", SH_OK, 0, 1023},
    {"bytes 0-1023/*", SH_OK, 0, 1023},
    {"Bytes 1-2/*", SH_OK, 1, 2},
    {"9999999999999999998-9999999999999999999", SH_OK, 9999999999999999998u,
     9999999999999999999u},
    {"bytes 0-9999999999999999998/9999999999999999999", SH_OK, 0,
     9999999999999999998u},
    {"", SH_EMALFORMED, 0, 0},
    {"-", SH_EMALFORMED, 0, 0},
    {"-1", SH_EMALFORMED, 0, 0},
    {"1-", SH_EMALFORMED, 0, 0},
    {"5-4", SH_EMALFORMED, 0, 0},
    {"0 - 10", SH_EMALFORMED, 0, 0},
    {"0-10x", SH_EMALFORMED, 0, 0},
    {"+0-10", SH_EMALFORMED, 0, 0},
    {"0-1023/2048", SH_EMALFORMED, 0, 0},
    {"bytes=0-10", SH_EMALFORMED, 0, 0},
    {"bytes 0-1023", SH_EMALFORMED, 0, 0},
    {"bytes 0-1023/", SH_EMALFORMED, 0, 0},
    {"bytes 0-1023/1023", SH_EMALFORMED, 0, 0},
    {"bytes 0-1023/**", SH_EMALFORMED, 0, 0},
    {"bytes 0-1023/2048x", SH_EMALFORMED, 0, 0},
    {"bytes */2048", SH_EMALFORMED, 0, 0},
    {"bytes 5-4/10", SH_EMALFORMED, 0, 0},
    {"0-18446744073709551615", SH_EMALFORMED, 0, 0},
    {"00000000000000000000-1", SH_EMALFORMED, 0, 0},
    {"bytes 0-1/18446744073709551616", SH_EMALFORMED, 0, 0},
};

static void test_content_range_table(void **state)
{
    (void)state;
    for (size_t i = 0;
         i < sizeof content_range_cases / sizeof content_range_cases[0]; i++) {
        const struct content_range_case *c = &content_range_cases[i];
        uint64_t first = 77;
        uint64_t last = 88;
        int rv = oci_content_range_parse(c->hdr, &first, &last);
        if (rv != c->rv)
            fail_msg("oci_content_range_parse('%s') = %d, want %d", c->hdr, rv,
                     c->rv);
        if (rv == SH_OK && (first != c->first || last != c->last))
            fail_msg(
                "oci_content_range_parse('%s') = [%llu, %llu], want "
                "[%llu, %llu]",
                c->hdr, (unsigned long long)first, (unsigned long long)last,
                (unsigned long long)c->first, (unsigned long long)c->last);
        if (rv != SH_OK && (first != 77 || last != 88))
            fail_msg(
                "oci_content_range_parse('%s') wrote its outputs on "
                "error",
                c->hdr);
    }
}

static void test_content_range_null(void **state)
{
    uint64_t first = 1;
    uint64_t last = 2;
    (void)state;
    assert_int_equal(oci_content_range_parse(NULL, &first, &last),
                     SH_EMALFORMED);
    assert_int_equal(first, 1);
    assert_int_equal(last, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_table),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_name_bounded_by_len),
        cmocka_unit_test(test_tag_table),
        cmocka_unit_test(test_tag_length),
        cmocka_unit_test(test_range_table),
        cmocka_unit_test(test_range_null),
        cmocka_unit_test(test_content_range_table),
        cmocka_unit_test(test_content_range_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
