/* Fragments shared by the storage unit tests: a temporary directory that is
 * removed (and proven removed) at teardown, and a log sink that captures
 * errors so tests can assert their exact text. */
#ifndef SHOAL_TEST_UNIT_STORAGE_FIXTURE_H
#define SHOAL_TEST_UNIT_STORAGE_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"

/* ---- temporary directory ---- */

static inline char *fx_tmpdir(void)
{
    char tmpl[] = "/tmp/shoal-storage-test-XXXXXX";
    char *d = mkdtemp(tmpl);

    assert_non_null(d);
    return sh_strdup(d);
}

static inline int fx_rm_one(const char *path,
                            const struct stat *sb,
                            int flag,
                            struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove the tree, check it is gone and free the string. */
static inline void fx_rmtree(char *dir)
{
    assert_int_equal(nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    free(dir);
}

/* Entries in a directory, "." and ".." excluded. */
static inline int fx_count_entries(const char *dir)
{
    struct dirent *e;
    DIR *d = opendir(dir);
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Whole content of a file (malloc'ed) and its size. */
static inline char *fx_slurp(const char *path, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *data;

    assert_non_null(f);
    assert_int_equal(fstat(fileno(f), &st), 0);
    data = sh_malloc((size_t)st.st_size + 1);
    assert_int_equal(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    data[st.st_size] = '\0';
    *len = (size_t)st.st_size;
    return data;
}

/* ---- log capture ---- */

struct fx_log {
    int errors;     /* SH_LOG_ERROR messages seen */
    char last[512]; /* text of the last one */
};

static struct fx_log fx_log;

static inline void fx_log_emit(void *data,
                               int level,
                               const char *file,
                               int line,
                               const char *func,
                               const char *msg)
{
    (void)data;
    (void)file;
    (void)line;
    (void)func;
    if (level < SH_LOG_ERROR)
        return;
    fx_log.errors++;
    snprintf(fx_log.last, sizeof fx_log.last, "%s", msg);
}

static inline void fx_log_capture(void)
{
    static const struct sh_log_sink sink = {NULL, fx_log_emit};

    memset(&fx_log, 0, sizeof fx_log);
    sh_log_set_sink(&sink);
}

static inline void fx_log_restore(void)
{
    sh_log_set_sink(NULL);
}

#endif
