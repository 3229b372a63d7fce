/* storage/durable.c: atomic durable writes and mkdir -p. */
#include "fixture.h"

struct fixture {
    char *dir; /* owned: temporary directory */
};

static int setup(void **state)
{
    struct fixture *f = sh_malloc(sizeof *f);

    f->dir = fx_tmpdir();
    fx_log_capture();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    fx_log_restore();
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

static void test_write_new(void **state)
{
    struct fixture *f = *state;
    char *path = sh_asprintf("%s/file", f->dir);
    struct stat st;
    size_t len;
    char *got;

    assert_int_equal(durable_write_file(path, "hello", 5), 0);
    got = fx_slurp(path, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(got, "hello", 5);
    free(got);
    /* No temp file left behind, and the mode is 0640. */
    assert_int_equal(fx_count_entries(f->dir), 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(fx_log.errors, 0);
    free(path);
}

static void test_overwrite_and_empty(void **state)
{
    struct fixture *f = *state;
    char *path = sh_asprintf("%s/file", f->dir);
    size_t len;
    char *got;

    assert_int_equal(durable_write_file(path, "first version", 13), 0);
    assert_int_equal(durable_write_file(path, "v2", 2), 0);
    got = fx_slurp(path, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(got, "v2", 2);
    free(got);

    assert_int_equal(durable_write_file(path, NULL, 0), 0);
    got = fx_slurp(path, &len);
    assert_int_equal(len, 0);
    free(got);
    assert_int_equal(fx_count_entries(f->dir), 1);
    free(path);
}

static void test_write_missing_dir(void **state)
{
    struct fixture *f = *state;
    char *path = sh_asprintf("%s/nope/file", f->dir);

    assert_int_equal(durable_write_file(path, "x", 1), SH_ENOTFOUND);
    assert_int_equal(fx_count_entries(f->dir), 0);
    assert_int_equal(fx_log.errors, 1);
    /* "unable to create '<path>.tmp.XXXXXX': No such file or directory" */
    char *head = sh_asprintf("unable to create '%s.tmp.", path);
    const char *tail = "': No such file or directory";
    assert_int_equal(strncmp(fx_log.last, head, strlen(head)), 0);
    assert_int_equal(strlen(fx_log.last), strlen(head) + 6 + strlen(tail));
    assert_string_equal(fx_log.last + strlen(head) + 6, tail);
    free(head);
    free(path);
}

static void test_fsync_dir(void **state)
{
    struct fixture *f = *state;
    char *missing = sh_asprintf("%s/missing", f->dir);

    assert_int_equal(durable_fsync_dir(f->dir), 0);
    assert_int_equal(durable_fsync_dir(missing), SH_ENOTFOUND);
    assert_int_equal(fx_log.errors, 1);
    char *want = sh_asprintf(
        "unable to open directory '%s': No such file or directory", missing);
    assert_string_equal(fx_log.last, want);
    free(want);
    free(missing);
}

static void test_mkdirs(void **state)
{
    struct fixture *f = *state;
    char *deep = sh_asprintf("%s/a/b//c/", f->dir);
    char *c = sh_asprintf("%s/a/b/c", f->dir);
    char *file = sh_asprintf("%s/a/file", f->dir);
    char *under = sh_asprintf("%s/a/file/x", f->dir);
    struct stat st;

    assert_int_equal(durable_mkdirs(deep), 0);
    assert_int_equal(stat(c, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0750 & ~mask);
    /* Existing directories are fine. */
    assert_int_equal(durable_mkdirs(deep), 0);
    assert_int_equal(durable_mkdirs(f->dir), 0);

    /* A file in the way. */
    assert_int_equal(durable_write_file(file, "x", 1), 0);
    assert_int_equal(durable_mkdirs(file), SH_EEXIST);
    assert_int_equal(durable_mkdirs(under), SH_EEXIST);
    assert_int_equal(fx_log.errors, 2);
    char *want =
        sh_asprintf("unable to create directory '%s': not a directory", file);
    assert_string_equal(fx_log.last, want);
    free(want);
    free(deep);
    free(c);
    free(file);
    free(under);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_missing_dir, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
