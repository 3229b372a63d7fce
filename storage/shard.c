/* The shard store: directory layout, crc32c, trailer codec and the
 * operations on finished shards (exists, delete, usage).  The writer and the
 * reader live in shard_writer.c and shard_reader.c; the format is described
 * in shard_format.h.
 *
 * The happy path is: shard_store_open creates root/shards and root/spool
 * (durably) and empties the spool, whose files were never acknowledged;
 * names map to paths root/shards/<algo>/<xx>/<hex>.<idx>.
 *
 * Possible failure modes are:
 * - the root cannot be created or the spool cannot be listed (open fails
 *   with the reason in errmsg);
 * - a name that is not a valid registered digest: shard_store_path returns
 *   NULL, exists is false, delete returns SH_EINVAL, so no caller-supplied
 *   name can reach outside the shard tree;
 * - delete of an absent shard: SH_ENOTFOUND.
 *
 * A store is immutable after open: any number of threads may use it at
 * once, each with its own writers and readers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/durable.h"
#include "storage/shard_format.h"

/* ISA-L's crc32_iscsi neither inverts its input nor its output, so the
 * standard (reflected, ~init, ~final) CRC32C is ~crc32_iscsi(~seed).  With
 * this convention a crc can be chained: crc(crc(0, a), b) == crc(0, ab). */
uint32_t shard_crc32c(uint32_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned int crc = ~seed;

    while (len > 0) {
        size_t n = len < (size_t)INT_MAX ? len : (size_t)1 << 30;
        crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
        p += n;
        len -= n;
    }
    return ~crc;
}

void shard__trailer_encode(const struct shard_trailer *t,
                           unsigned char out[SHARD_TRAILER_SIZE])
{
    memcpy(out, SHARD_MAGIC, SHARD_MAGIC_LEN);
    shard__put_le32(out + 8, t->version);
    shard__put_le32(out + 12, t->block_size);
    shard__put_le32(out + 16, (uint32_t)t->data_len);
    shard__put_le32(out + 20, (uint32_t)(t->data_len >> 32));
    shard__put_le32(out + 24, t->table_crc);
    shard__put_le32(out + 28, shard_crc32c(0, out, 28));
}

int shard__trailer_decode(const unsigned char in[SHARD_TRAILER_SIZE],
                          struct shard_trailer *t)
{
    if (memcmp(in, SHARD_MAGIC, SHARD_MAGIC_LEN) != 0)
        return SH_ECORRUPT;
    if (shard__get_le32(in + 28) != shard_crc32c(0, in, 28))
        return SH_ECORRUPT;
    t->version = shard__get_le32(in + 8);
    t->block_size = shard__get_le32(in + 12);
    t->data_len = (uint64_t)shard__get_le32(in + 16) |
                  (uint64_t)shard__get_le32(in + 20) << 32;
    t->table_crc = shard__get_le32(in + 24);
    if (t->version != SHARD_VERSION || t->block_size != SHARD_BLOCK_SIZE)
        return SH_EUNSUPPORTED;
    return 0;
}

char *shard__spool_path(struct shard_store *s, const char *spool_name)
{
    if (spool_name[0] == '\0' || strchr(spool_name, '/') != NULL ||
        strcmp(spool_name, ".") == 0 || strcmp(spool_name, "..") == 0)
        return NULL;
    return sh_asprintf("%s/%s", s->spool, spool_name);
}

char *shard_store_path(struct shard_store *s, const char *name, unsigned idx)
{
    enum digest_algo algo;
    const char *colon;

    /* Only a registered digest: "[a-z0-9]+:" then lower-case hex, so the
     * pieces are safe path components. */
    if (digest_parse(name, strlen(name), &algo) != 0)
        return NULL;
    colon = strchr(name, ':');
    return sh_asprintf("%s/%.*s/%.2s/%s.%u", s->shards, (int)(colon - name),
                       name, colon + 1, colon + 1, idx);
}

bool shard_store_exists(struct shard_store *s, const char *name, unsigned idx)
{
    char *path = shard_store_path(s, name, idx);
    struct stat st;
    bool found;

    if (path == NULL)
        return false;
    found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return found;
}

int shard_store_delete(struct shard_store *s, const char *name, unsigned idx)
{
    char *path = shard_store_path(s, name, idx);
    char eb[128];
    int rv;

    if (path == NULL)
        return SH_EINVAL;
    if (unlink(path) != 0) {
        rv = storage__errno(errno);
        if (rv != SH_ENOTFOUND)
            SH_ERROR("unable to delete '%s': %s", path,
                     strerror_r(errno, eb, sizeof eb));
        free(path);
        return rv;
    }
    /* The removal is durable once the directory is synced. */
    rv = storage__fsync_parent(path);
    free(path);
    return rv;
}

/* Remove every file in the spool that `keep` does not claim: writers that
 * never finished and that nobody will resume. */
static int spool_clean(const char *spool, shard_keep_fn keep, void *arg,
                       char *errmsg)
{
    char eb[128];
    struct dirent *e;
    unsigned removed = 0;
    DIR *d;
    int rv = 0;

    d = opendir(spool);
    if (d == NULL) {
        rv = storage__errno(errno);
        sh_errmsg_printf(errmsg, "unable to list '%s': %s", spool,
                         strerror_r(errno, eb, sizeof eb));
        return rv;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (keep != NULL && keep(arg, e->d_name))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
            rv = storage__errno(errno);
            sh_errmsg_printf(errmsg, "unable to remove '%s/%s': %s", spool,
                             e->d_name, strerror_r(errno, eb, sizeof eb));
            break;
        }
        removed++;
    }
    closedir(d);
    if (rv == 0 && removed > 0) {
        SH_INFO("removed %u unfinished spool file(s) from '%s'", removed,
                spool);
        rv = durable_fsync_dir(spool);
        if (rv != 0)
            sh_errmsg_printf(errmsg, "unable to fsync '%s'", spool);
    }
    return rv;
}

int shard_store_open(const char *dir, struct shard_store **out, char *errmsg)
{
    return shard_store_open_keep(dir, NULL, NULL, out, errmsg);
}

int shard_store_open_keep(const char *dir,
                          shard_keep_fn keep,
                          void *arg,
                          struct shard_store **out,
                          char *errmsg)
{
    struct shard_store *s = sh_malloc(sizeof *s);
    int rv;

    *out = NULL;
    s->root = sh_strdup(dir);
    s->shards = sh_asprintf("%s/shards", dir);
    s->spool = sh_asprintf("%s/spool", dir);
    rv = durable_mkdirs(s->shards);
    if (rv == 0)
        rv = durable_mkdirs(s->spool);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "unable to create shard store '%s': %s", dir,
                         sh_strerror(rv));
        shard_store_close(s);
        return rv;
    }
    rv = spool_clean(s->spool, keep, arg, errmsg);
    if (rv != 0) {
        shard_store_close(s);
        return rv;
    }
    *out = s;
    return 0;
}

void shard_store_close(struct shard_store *s)
{
    if (s == NULL)
        return;
    free(s->root);
    free(s->shards);
    free(s->spool);
    free(s);
}

/* Add up regular files under the directory open at `fd` (consumed), and
 * delete them when `wipe`. */
static void usage_walk(int fd, int depth, bool wipe, uint64_t *files,
                       uint64_t *bytes)
{
    struct dirent *e;
    struct stat st;
    DIR *d = fdopendir(fd);

    if (d == NULL) {
        close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* deleted meanwhile */
        if (S_ISREG(st.st_mode)) {
            *files += 1;
            *bytes += (uint64_t)st.st_size;
            if (wipe)
                (void)unlinkat(dirfd(d), e->d_name, 0);
        } else if (S_ISDIR(st.st_mode) && depth < 4) {
            int sub =
                openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                usage_walk(sub, depth + 1, wipe, files, bytes);
        }
    }
    closedir(d);
}

static void store_walk(struct shard_store *s, bool wipe, uint64_t *files,
                       uint64_t *bytes)
{
    int fd;

    *files = 0;
    *bytes = 0;
    fd = open(s->shards, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        SH_ERROR("unable to open '%s'", s->shards);
        return;
    }
    usage_walk(fd, 0, wipe, files, bytes);
}

void shard_store_usage(struct shard_store *s, uint64_t *files, uint64_t *bytes)
{
    store_walk(s, false, files, bytes);
}

void shard_store_wipe(struct shard_store *s, uint64_t *files, uint64_t *bytes)
{
    store_walk(s, true, files, bytes);
}

/* Each "<hex>.<idx>" file of the fan-out directory open at `fd` (consumed)
 * under algorithm `algo`. */
static bool each_in_dir(int fd, const char *algo, shard_each_fn fn, void *arg)
{
    struct dirent *e;
    struct stat st;
    DIR *d = fdopendir(fd);
    bool go = true;

    if (d == NULL) {
        close(fd);
        return true;
    }
    while (go && (e = readdir(d)) != NULL) {
        char name[DIGEST_MAX_STR + 16];
        const char *dot = strrchr(e->d_name, '.');
        char *end;
        unsigned long idx;
        enum digest_algo a;
        int n;

        if (dot == NULL || dot == e->d_name || dot[1] == '\0')
            continue;
        idx = strtoul(dot + 1, &end, 10);
        if (*end != '\0' || idx > UINT32_MAX)
            continue;
        n = snprintf(name, sizeof name, "%s:%.*s", algo,
                     (int)(dot - e->d_name), e->d_name);
        if (n <= 0 || (size_t)n >= sizeof name ||
            digest_parse(name, (size_t)n, &a) != 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        go = fn(arg, name, (unsigned)idx, (uint64_t)st.st_size,
                (int64_t)st.st_mtime);
    }
    closedir(d);
    return go;
}

void shard_store_each(struct shard_store *s, shard_each_fn fn, void *arg)
{
    DIR *top = opendir(s->shards);
    struct dirent *a;
    bool go = true;

    if (top == NULL)
        return;
    while (go && (a = readdir(top)) != NULL) {
        DIR *mid;
        struct dirent *x;
        int fd;

        if (a->d_name[0] == '.')
            continue;
        fd = openat(dirfd(top), a->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        mid = fdopendir(fd);
        if (mid == NULL) {
            close(fd);
            continue;
        }
        while (go && (x = readdir(mid)) != NULL) {
            int sub;
            if (x->d_name[0] == '.')
                continue;
            sub = openat(dirfd(mid), x->d_name,
                         O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                go = each_in_dir(sub, a->d_name, fn, arg);
        }
        closedir(mid);
    }
    closedir(top);
}
