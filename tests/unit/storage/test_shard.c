/* storage/shard*.c: crc32c, the file format, verified reads, corruption,
 * finish onto an existing shard, spool cleanup. */
#include <fcntl.h>

#include "fixture.h"

#define BS SHARD_BLOCK_SIZE
#define NAME_A \
    "sha256:ab0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855e"
#define NAME_B \
    "sha256:cd0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855e"

struct fixture {
    char *dir;             /* owned: temporary directory */
    struct shard_store *s; /* open store */
};

static int setup(void **state)
{
    struct fixture *f = sh_malloc(sizeof *f);
    char errmsg[SH_ERRMSG_SIZE] = "";

    f->dir = fx_tmpdir();
    assert_int_equal(shard_store_open(f->dir, &f->s, errmsg), 0);
    assert_string_equal(errmsg, "");
    fx_log_capture();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    fx_log_restore();
    shard_store_close(f->s);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

/* Deterministic pseudo-random bytes (xorshift32). */
static unsigned char *pattern(size_t n, uint32_t seed)
{
    unsigned char *p = sh_malloc(n ? n : 1);
    uint32_t x = seed | 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

/* Write `data` as shard (name, idx) in appends of odd, varying sizes. */
static void write_shard(struct shard_store *s,
                        const char *name,
                        unsigned idx,
                        const unsigned char *data,
                        size_t n)
{
    static const size_t steps[] = {1, 7, 4093, BS - 1, 3, BS + 5, 300007, 2};
    struct shard_writer *w;
    size_t off = 0;

    assert_int_equal(shard_writer_open(s, "upload-1", &w), 0);
    for (size_t i = 0; off < n; i++) {
        size_t k = steps[i % 8];
        if (k > n - off)
            k = n - off;
        assert_int_equal(shard_writer_append(w, data + off, k), 0);
        off += k;
        assert_int_equal(shard_writer_size(w), off);
    }
    assert_int_equal(shard_writer_finish(w, name, idx), 0);
}

static void test_crc32c(void **state)
{
    const char *v = "123456789";
    unsigned char *big = pattern(3 * BS + 17, 7);
    uint32_t whole;

    (void)state;
    assert_int_equal(shard_crc32c(0, v, 9), 0xE3069283);
    assert_int_equal(shard_crc32c(0, "", 0), 0);
    assert_int_equal(shard_crc32c(0, "a", 1), 0xC1D04330);
    /* Chaining at every split point gives the crc of the whole. */
    for (size_t i = 0; i <= 9; i++)
        assert_int_equal(shard_crc32c(shard_crc32c(0, v, i), v + i, 9 - i),
                         0xE3069283);
    whole = shard_crc32c(0, big, 3 * BS + 17);
    assert_int_equal(
        shard_crc32c(shard_crc32c(0, big, BS + 3), big + BS + 3, 2 * BS + 14),
        whole);
    free(big);
}

static void test_path(void **state)
{
    struct fixture *f = *state;
    char *p = shard_store_path(f->s, NAME_A, 3);
    char *want = sh_asprintf("%s/shards/sha256/ab/%s.3", f->dir, NAME_A + 7);

    assert_string_equal(p, want);
    free(p);
    free(want);
    /* Names that are not registered digests never become paths. */
    assert_null(shard_store_path(f->s, "sha256:../../etc/passwd", 0));
    assert_null(shard_store_path(f->s, "../x", 0));
    assert_null(shard_store_path(f->s, "", 0));
    assert_false(shard_store_exists(f->s, "nope", 0));
    assert_int_equal(shard_store_delete(f->s, "nope", 0), SH_EINVAL);
}

static void check_roundtrip(struct fixture *f, size_t n)
{
    unsigned char *data = pattern(n, (uint32_t)n);
    unsigned char *got = sh_malloc(n + 1);
    struct shard_reader *r;
    char *path;
    struct stat st;
    size_t flen;
    unsigned char *raw;
    uint64_t nb = (n + BS - 1) / BS;

    write_shard(f->s, NAME_A, 0, data, n);
    assert_true(shard_store_exists(f->s, NAME_A, 0));
    assert_false(shard_store_exists(f->s, NAME_A, 1));

    /* The file is data, table, trailer. */
    path = shard_store_path(f->s, NAME_A, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, n + 4 * nb + 32);
    raw = (unsigned char *)fx_slurp(path, &flen);
    assert_memory_equal(raw, data, n);
    const unsigned char *t = raw + flen - 32;
    assert_memory_equal(t, "SHOALSHD", 8);
    assert_int_equal(t[8] | t[9] << 8 | t[10] << 16 | (uint32_t)t[11] << 24, 1);
    assert_int_equal(t[12] | t[13] << 8 | t[14] << 16, BS);
    assert_int_equal(t[16] | t[17] << 8 | t[18] << 16 | (uint32_t)t[19] << 24,
                     n);
    for (uint64_t b = 0; b < nb; b++) {
        size_t bl = b + 1 < nb ? BS : n - b * BS;
        const unsigned char *e = raw + n + 4 * b;
        uint32_t crc = e[0] | e[1] << 8 | e[2] << 16 | (uint32_t)e[3] << 24;
        assert_int_equal(crc, shard_crc32c(0, data + b * BS, bl));
    }
    free(raw);
    free(path);

    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_size(r), n);
    memset(got, 0xAA, n + 1);
    assert_int_equal(shard_reader_read(r, 0, got, n), 0);
    assert_memory_equal(got, data, n);
    assert_int_equal(got[n], 0xAA); /* nothing written past len */
    assert_int_equal(shard_reader_read(r, n, got, 0), 0);
    assert_int_equal(shard_reader_read(r, 0, got, n + 1), SH_ERANGE);
    assert_int_equal(shard_reader_read(r, n + 1, got, 0), SH_ERANGE);
    shard_reader_close(r);

    /* Spool is empty after finish. */
    char *spool = sh_asprintf("%s/spool", f->dir);
    assert_int_equal(fx_count_entries(spool), 0);
    free(spool);
    assert_int_equal(shard_store_delete(f->s, NAME_A, 0), 0);
    assert_false(shard_store_exists(f->s, NAME_A, 0));
    free(data);
    free(got);
}

static void test_roundtrip_sizes(void **state)
{
    static const size_t sizes[] = {
        0, 1, BS - 1, BS, BS + 1, 3 * BS + 17, 2 * 1024 * 1024 + 3};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_roundtrip(*state, sizes[i]);
    assert_int_equal(fx_log.errors, 0);
}

struct range {
    uint64_t off;
    size_t len;
};

static void test_range_reads(void **state)
{
    static const struct range ok[] = {
        {0, 1},           {BS - 1, 1},      {BS - 1, 2},      {BS, BS},
        {BS - 1, BS + 2}, {BS + 1, BS - 2}, {0, 2 * BS},      {1, 3 * BS + 16},
        {3 * BS, 17},     {3 * BS - 1, 18}, {3 * BS + 16, 1}, {2 * BS, BS + 17},
        {BS / 2, BS},     {3 * BS + 17, 0}, {5, 0},
    };
    static const struct range bad[] = {
        {0, 3 * BS + 18}, {3 * BS + 17, 1}, {3 * BS + 16, 2},
        {3 * BS + 18, 0}, {UINT64_MAX, 1},  {1, SIZE_MAX},
    };
    struct fixture *f = *state;
    size_t n = 3 * BS + 17;
    unsigned char *data = pattern(n, 42);
    unsigned char *got = sh_malloc(n);
    struct shard_reader *r;

    write_shard(f->s, NAME_A, 2, data, n);
    assert_int_equal(shard_reader_open(f->s, NAME_A, 2, &r), 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(got, 0, n);
        assert_int_equal(shard_reader_read(r, ok[i].off, got, ok[i].len), 0);
        assert_memory_equal(got, data + ok[i].off, ok[i].len);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(shard_reader_read(r, bad[i].off, got, bad[i].len),
                         SH_ERANGE);

    /* The fd reads the data at offset 0. */
    int fd = shard_reader_fd(r);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, got, 100, BS), 100);
    assert_memory_equal(got, data + BS, 100);
    shard_reader_close(r);
    free(data);
    free(got);
    assert_int_equal(fx_log.errors, 0);
}

/* Overwrite one byte of a file at `off` with its complement. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c = (unsigned char)~c;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_corrupt_block(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * BS + 17;
    unsigned char *data = pattern(n, 9);
    unsigned char *got = sh_malloc(n);
    char *path = shard_store_path(f->s, NAME_A, 0);
    struct shard_reader *r;
    char *want;

    write_shard(f->s, NAME_A, 0, data, n);
    flip_byte(path, BS + 100); /* block 1 */
    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);

    /* Reads elsewhere still work. */
    assert_int_equal(shard_reader_read(r, 0, got, BS), 0);
    assert_memory_equal(got, data, BS);
    assert_int_equal(shard_reader_read(r, 2 * BS, got, BS + 17), 0);
    assert_memory_equal(got, data + 2 * BS, BS + 17);
    assert_int_equal(shard_reader_read(r, BS - 10, got, 10), 0);
    assert_memory_equal(got, data + BS - 10, 10);
    assert_int_equal(fx_log.errors, 0);

    /* Any read touching block 1 fails, even away from the flipped byte. */
    assert_int_equal(shard_reader_read(r, BS + 50, got, 100), SH_ECORRUPT);
    assert_int_equal(shard_reader_read(r, BS + 5000, got, 1), SH_ECORRUPT);
    assert_int_equal(shard_reader_read(r, BS - 1, got, 2), SH_ECORRUPT);
    assert_int_equal(shard_reader_read(r, 2 * BS - 1, got, 1), SH_ECORRUPT);
    assert_int_equal(shard_reader_read(r, 0, got, n), SH_ECORRUPT);
    assert_int_equal(shard_reader_read(r, BS, got, BS), SH_ECORRUPT);
    assert_int_equal(fx_log.errors, 6);
    want = sh_asprintf("checksum mismatch in shard '%s' block 1", path);
    assert_string_equal(fx_log.last, want);
    free(want);
    shard_reader_close(r);

    /* The short last block is checked too. */
    flip_byte(path, BS + 100); /* repair block 1 */
    flip_byte(path, 3 * BS + 16);
    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_read(r, 0, got, 3 * BS), 0);
    assert_int_equal(shard_reader_read(r, 3 * BS, got, 1), SH_ECORRUPT);
    shard_reader_close(r);

    free(path);
    free(data);
    free(got);
}

/* shard_reader_chunk verifies the same blocks as read and owns its bytes. */
static void test_chunk(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * BS + 17;
    unsigned char *data = pattern(n, 11);
    char *path = shard_store_path(f->s, NAME_A, 0);
    struct shard_reader *r;
    struct shard_chunk m, m2;

    write_shard(f->s, NAME_A, 0, data, n);
    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_chunk(r, 0, n, &m), 0);
    assert_memory_equal(m.data, data, n);
    assert_int_equal(shard_reader_chunk(r, BS - 3, 10, &m2), 0);
    assert_memory_equal(m2.data, data + BS - 3, 10);
    shard_chunk_release(&m2);
    assert_int_equal(shard_reader_chunk(r, n, 0, &m2), 0);
    shard_chunk_release(&m2);
    assert_int_equal(shard_reader_chunk(r, n - 1, 2, &m2), SH_ERANGE);
    assert_null(m2.data);
    shard_reader_close(r);
    /* A chunk outlives its reader. */
    assert_memory_equal(m.data, data, n);
    shard_chunk_release(&m);
    assert_null(m.data);

    flip_byte(path, 2 * BS + 1); /* block 2 */
    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_chunk(r, 0, 2 * BS, &m), 0);
    shard_chunk_release(&m);
    assert_int_equal(shard_reader_chunk(r, 2 * BS - 1, 2, &m), SH_ECORRUPT);
    assert_null(m.data);
    assert_int_equal(shard_reader_chunk(r, 3 * BS, 17, &m), 0);
    assert_memory_equal(m.data, data + 3 * BS, 17);
    shard_chunk_release(&m);
    assert_int_equal(fx_log.errors, 1);
    shard_reader_close(r);

    free(path);
    free(data);
}

static void hash_each(void *arg, const void *data, size_t len)
{
    digest_ctx_update(arg, data, len);
}

static bool keep_only_b(void *arg, const char *name)
{
    (void)arg;
    return strcmp(name, "up-b") == 0;
}

/* A spool left by shard_writer_close survives a reopen that keeps it, is
 * resumed with its checksum state and the caller's digest rebuilt, and
 * finishes into a shard identical to one written in one go. */
static void test_resume(void **state)
{
    struct fixture *f = *state;
    size_t n = 2 * BS + 777, cut = BS + 333;
    unsigned char *data = pattern(n, 21);
    unsigned char *got = sh_malloc(n);
    char errmsg[SH_ERRMSG_SIZE] = "";
    char want[DIGEST_MAX_STR], have[DIGEST_MAX_STR];
    struct shard_writer *w, *wa;
    struct shard_reader *r;
    struct digest_ctx *c;
    char *spool_a;

    digest_compute(DIGEST_SHA256, data, n, want);
    assert_int_equal(shard_writer_open(f->s, "up-a", &wa), 0);
    assert_int_equal(shard_writer_append(wa, data, 10), 0);
    assert_int_equal(shard_writer_close(wa), 0);
    assert_int_equal(shard_writer_open(f->s, "up-b", &w), 0);
    assert_int_equal(shard_writer_append(w, data, cut), 0);
    assert_int_equal(shard_writer_close(w), 0);

    /* Reopen the store keeping only up-b. */
    shard_store_close(f->s);
    assert_int_equal(shard_store_open_keep(f->dir, keep_only_b, NULL, &f->s,
                                           errmsg), 0);
    spool_a = sh_asprintf("%s/spool/up-a", f->dir);
    assert_int_equal(access(spool_a, F_OK), -1);
    assert_int_equal(shard_writer_resume(f->s, "up-a", NULL, NULL, &wa),
                     SH_ENOTFOUND);
    assert_null(wa);

    c = digest_ctx_new(DIGEST_SHA256);
    assert_int_equal(shard_writer_resume(f->s, "up-b", hash_each, c, &w), 0);
    assert_int_equal(shard_writer_size(w), cut);
    digest_ctx_update(c, data + cut, n - cut);
    digest_ctx_final(c, have);
    digest_ctx_free(c);
    assert_string_equal(have, want);
    assert_int_equal(shard_writer_append(w, data + cut, n - cut), 0);
    assert_int_equal(shard_writer_finish(w, NAME_A, 0), 0);

    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_size(r), n);
    assert_int_equal(shard_reader_read(r, 0, got, n), 0);
    assert_memory_equal(got, data, n);
    shard_reader_close(r);
    free(spool_a);
    free(data);
    free(got);
}

/* Open must fail with `want` after `damage` is done to the shard file. */
static void expect_open_fails(struct fixture *f,
                              void (*damage)(const char *path, size_t n),
                              int want)
{
    size_t n = BS + 10;
    unsigned char *data = pattern(n, 3);
    char *path = shard_store_path(f->s, NAME_B, 0);
    struct shard_reader *r = (struct shard_reader *)f;

    write_shard(f->s, NAME_B, 0, data, n);
    damage(path, n);
    fx_log.errors = 0;
    assert_int_equal(shard_reader_open(f->s, NAME_B, 0, &r), want);
    assert_null(r);
    assert_int_equal(fx_log.errors, 1);
    assert_int_equal(unlink(path), 0);
    free(path);
    free(data);
}

static void truncate_1(const char *path, size_t n)
{
    assert_int_equal(truncate(path, (off_t)(n + 8 + 32 - 1)), 0);
}

static void truncate_short(const char *path, size_t n)
{
    (void)n;
    assert_int_equal(truncate(path, 31), 0);
}

static void extend_1(const char *path, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);

    (void)n;
    assert_int_equal(write(fd, "", 1), 1);
    close(fd);
}

static void bad_magic(const char *path, size_t n)
{
    flip_byte(path, (off_t)(n + 8));
}

static void bad_length(const char *path, size_t n)
{
    flip_byte(path, (off_t)(n + 8 + 16)); /* covered by the trailer crc */
}

static void bad_trailer_crc(const char *path, size_t n)
{
    flip_byte(path, (off_t)(n + 8 + 31));
}

static void bad_table(const char *path, size_t n)
{
    flip_byte(path, (off_t)(n + 1));
}

/* A well-formed trailer of a future version. */
static void future_version(const char *path, size_t n)
{
    int fd = open(path, O_RDWR);
    unsigned char t[32];
    off_t at = (off_t)(n + 8);
    uint32_t crc;

    assert_int_equal(pread(fd, t, 32, at), 32);
    t[8] = 2;
    crc = shard_crc32c(0, t, 28);
    t[28] = (unsigned char)crc;
    t[29] = (unsigned char)(crc >> 8);
    t[30] = (unsigned char)(crc >> 16);
    t[31] = (unsigned char)(crc >> 24);
    assert_int_equal(pwrite(fd, t, 32, at), 32);
    close(fd);
}

static void test_bad_files(void **state)
{
    struct fixture *f = *state;
    struct shard_reader *r;

    expect_open_fails(f, truncate_1, SH_ECORRUPT);
    assert_non_null(strstr(fx_log.last, "bad trailer"));
    expect_open_fails(f, truncate_short, SH_ECORRUPT);
    assert_non_null(strstr(fx_log.last, "too short (31 bytes)"));
    expect_open_fails(f, extend_1, SH_ECORRUPT);
    assert_non_null(strstr(fx_log.last, "bad trailer"));
    expect_open_fails(f, bad_magic, SH_ECORRUPT);
    expect_open_fails(f, bad_length, SH_ECORRUPT);
    expect_open_fails(f, bad_trailer_crc, SH_ECORRUPT);
    expect_open_fails(f, bad_table, SH_ECORRUPT);
    assert_non_null(strstr(fx_log.last, "corrupt checksum table"));
    expect_open_fails(f, future_version, SH_EUNSUPPORTED);
    assert_non_null(strstr(fx_log.last, "bad trailer: unsupported"));

    fx_log.errors = 0;
    assert_int_equal(shard_reader_open(f->s, NAME_B, 0, &r), SH_ENOTFOUND);
    assert_int_equal(shard_reader_open(f->s, "sha1:ab", 0, &r), SH_EINVAL);
    assert_int_equal(fx_log.errors, 0);
}

static void test_finish_onto_existing(void **state)
{
    struct fixture *f = *state;
    unsigned char *first = pattern(1000, 1);
    unsigned char *second = pattern(2000, 2);
    unsigned char got[1000];
    struct shard_reader *r;
    char *spool = sh_asprintf("%s/spool", f->dir);

    write_shard(f->s, NAME_A, 4, first, 1000);
    write_shard(f->s, NAME_A, 4, second, 2000); /* returns 0, discarded */
    assert_int_equal(fx_count_entries(spool), 0);
    assert_int_equal(shard_reader_open(f->s, NAME_A, 4, &r), 0);
    assert_int_equal(shard_reader_size(r), 1000);
    assert_int_equal(shard_reader_read(r, 0, got, 1000), 0);
    assert_memory_equal(got, first, 1000);
    shard_reader_close(r);

    /* Replace: the new bytes win; a reader opened before keeps the old. */
    {
        struct shard_writer *w;
        struct shard_reader *old;
        unsigned char got2[2000];
        assert_int_equal(shard_reader_open(f->s, NAME_A, 4, &old), 0);
        assert_int_equal(shard_writer_open(f->s, "repair-1", &w), 0);
        assert_int_equal(shard_writer_append(w, second, 2000), 0);
        assert_int_equal(shard_writer_finish_replace(w, NAME_A, 4), 0);
        assert_int_equal(fx_count_entries(spool), 0);
        assert_int_equal(shard_reader_open(f->s, NAME_A, 4, &r), 0);
        assert_int_equal(shard_reader_size(r), 2000);
        assert_int_equal(shard_reader_read(r, 0, got2, 2000), 0);
        assert_memory_equal(got2, second, 2000);
        shard_reader_close(r);
        assert_int_equal(shard_reader_read(old, 0, got, 1000), 0);
        assert_memory_equal(got, first, 1000);
        shard_reader_close(old);
    }
    free(spool);
    free(first);
    free(second);
}

static void test_writer_errors(void **state)
{
    struct fixture *f = *state;
    struct shard_writer *w;
    struct shard_writer *w2 = (struct shard_writer *)f;
    char *spool = sh_asprintf("%s/spool", f->dir);

    assert_int_equal(shard_writer_open(f->s, "a/b", &w2), SH_EINVAL);
    assert_null(w2);
    assert_int_equal(shard_writer_open(f->s, "", &w2), SH_EINVAL);
    assert_int_equal(shard_writer_open(f->s, "..", &w2), SH_EINVAL);

    assert_int_equal(shard_writer_open(f->s, "u1", &w), 0);
    assert_int_equal(shard_writer_append(w, "abc", 3), 0);
    assert_int_equal(shard_writer_open(f->s, "u1", &w2), SH_EEXIST);
    assert_null(w2);
    assert_int_equal(fx_count_entries(spool), 1);
    shard_writer_abort(w);
    assert_int_equal(fx_count_entries(spool), 0);

    /* Finish with a bad name discards the spool. */
    assert_int_equal(shard_writer_open(f->s, "u2", &w), 0);
    assert_int_equal(shard_writer_append(w, "abc", 3), 0);
    assert_int_equal(shard_writer_finish(w, "not-a-digest", 0), SH_EINVAL);
    assert_int_equal(fx_count_entries(spool), 0);
    shard_writer_abort(NULL);
    free(spool);
}

static void test_rehash(void **state)
{
    struct fixture *f = *state;
    size_t n = 5 * BS + 333; /* more than the writer's buffer */
    unsigned char *data = pattern(n, 11);
    unsigned char *got = sh_malloc(n);
    char want[DIGEST_MAX_STR];
    char out[DIGEST_MAX_STR];
    struct shard_writer *w;
    struct shard_reader *r;

    assert_int_equal(shard_writer_open(f->s, "u-rehash", &w), 0);
    assert_int_equal(shard_writer_rehash(w, DIGEST_SHA256, out), 0);
    digest_compute(DIGEST_SHA256, "", 0, want);
    assert_string_equal(out, want);

    assert_int_equal(shard_writer_append(w, data, 1001), 0);
    assert_int_equal(shard_writer_rehash(w, DIGEST_SHA512, out), 0);
    digest_compute(DIGEST_SHA512, data, 1001, want);
    assert_string_equal(out, want);

    /* Read back what was appended, across the write buffer. */
    assert_int_equal(shard_writer_pread(w, 1000, got, 1), 0);
    assert_int_equal(got[0], data[1000]);
    assert_int_equal(shard_writer_pread(w, 1001, got, 1), SH_ERANGE);
    assert_int_equal(shard_writer_pread(w, 0, got, 1001), 0);
    assert_memory_equal(got, data, 1001);

    /* The writer stays usable and the shard comes out whole. */
    assert_int_equal(shard_writer_append(w, data + 1001, n - 1001), 0);
    assert_int_equal(shard_writer_rehash(w, DIGEST_SHA512, out), 0);
    digest_compute(DIGEST_SHA512, data, n, want);
    assert_string_equal(out, want);
    assert_int_equal(shard_writer_finish(w, NAME_A, 0), 0);
    assert_int_equal(shard_reader_open(f->s, NAME_A, 0, &r), 0);
    assert_int_equal(shard_reader_size(r), n);
    assert_int_equal(shard_reader_read(r, 0, got, n), 0);
    assert_memory_equal(got, data, n);
    shard_reader_close(r);
    free(data);
    free(got);
}

static void test_spool_cleanup_and_usage(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *spool = sh_asprintf("%s/spool", f->dir);
    char *left1 = sh_asprintf("%s/spool/crashed-1", f->dir);
    char *left2 = sh_asprintf("%s/spool/crashed-2", f->dir);
    unsigned char *data = pattern(BS + 1, 5);
    uint64_t files, bytes;

    shard_store_usage(f->s, &files, &bytes);
    assert_int_equal(files, 0);
    assert_int_equal(bytes, 0);
    write_shard(f->s, NAME_A, 0, data, BS + 1);
    write_shard(f->s, NAME_B, 1, data, 10);
    shard_store_usage(f->s, &files, &bytes);
    assert_int_equal(files, 2);
    assert_int_equal(bytes, (BS + 1 + 8 + 32) + (10 + 4 + 32));

    assert_int_equal(durable_write_file(left1, "junk", 4), 0);
    assert_int_equal(durable_write_file(left2, "", 0), 0);
    assert_int_equal(fx_count_entries(spool), 2);
    shard_store_close(f->s);
    f->s = NULL;
    assert_int_equal(shard_store_open(f->dir, &f->s, errmsg), 0);
    assert_int_equal(fx_count_entries(spool), 0);
    /* Finished shards are untouched. */
    assert_true(shard_store_exists(f->s, NAME_A, 0));
    assert_true(shard_store_exists(f->s, NAME_B, 1));
    shard_store_usage(f->s, &files, &bytes);
    assert_int_equal(files, 2);

    assert_int_equal(shard_store_delete(f->s, NAME_B, 1), 0);
    assert_int_equal(shard_store_delete(f->s, NAME_B, 1), SH_ENOTFOUND);
    shard_store_usage(f->s, &files, &bytes);
    assert_int_equal(files, 1);
    assert_int_equal(bytes, BS + 1 + 8 + 32);

    /* Wipe (a cache store): every shard goes, the store stays usable. */
    shard_store_wipe(f->s, &files, &bytes);
    assert_int_equal(files, 1);
    assert_int_equal(bytes, BS + 1 + 8 + 32);
    assert_false(shard_store_exists(f->s, NAME_A, 0));
    shard_store_usage(f->s, &files, &bytes);
    assert_int_equal(files, 0);
    write_shard(f->s, NAME_A, 0, data, 10);
    assert_true(shard_store_exists(f->s, NAME_A, 0));
    assert_int_equal(fx_log.errors, 0);
    free(spool);
    free(left1);
    free(left2);
    free(data);
}

struct seen {
    unsigned n;
    bool a0, b7;
    uint64_t bytes;
};

static bool each_count(void *arg, const char *name, unsigned idx,
                       uint64_t size, int64_t mtime)
{
    struct seen *s = arg;
    s->n++;
    s->bytes += size;
    assert_true(mtime > 0);
    if (strcmp(name, NAME_A) == 0 && idx == 0)
        s->a0 = true;
    if (strcmp(name, NAME_B) == 0 && idx == 7)
        s->b7 = true;
    return true;
}

static void test_each(void **state)
{
    struct fixture *f = *state;
    unsigned char *data = pattern(100, 9);
    struct seen s = {0};
    char *junk = sh_asprintf("%s/shards/junk-file", f->dir);

    write_shard(f->s, NAME_A, 0, data, 100);
    write_shard(f->s, NAME_B, 7, data, 10);
    assert_int_equal(durable_write_file(junk, "x", 1), 0);
    shard_store_each(f->s, each_count, &s);
    assert_int_equal(s.n, 2);
    assert_true(s.a0);
    assert_true(s.b7);
    assert_int_equal(s.bytes, (100 + 4 + 32) + (10 + 4 + 32));
    free(junk);
    free(data);
}

static void test_store_open_error(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *file = sh_asprintf("%s/file", f->dir);
    struct shard_store *s2 = (struct shard_store *)f;
    char *want;

    assert_int_equal(durable_write_file(file, "x", 1), 0);
    assert_int_equal(shard_store_open(file, &s2, errmsg), SH_EEXIST);
    assert_null(s2);
    want =
        sh_asprintf("unable to create shard store '%s': already exists", file);
    assert_string_equal(errmsg, want);
    free(want);
    free(file);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),   T(test_path),
        T(test_roundtrip_sizes),         T(test_range_reads),
        T(test_corrupt_block),           T(test_bad_files),
        T(test_finish_onto_existing),    T(test_writer_errors),
        T(test_rehash),                  T(test_chunk),
        T(test_resume),
        T(test_spool_cleanup_and_usage), T(test_store_open_error),
        T(test_each),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
