/* The one durability helper: tmp -> fsync -> rename -> fsync(dir).
 *
 * The happy path of durable_write_file is: create a unique temp file next to
 * the target (same directory, so rename is atomic), write every byte, fsync
 * it, rename it over the target and fsync the directory so the new name
 * itself survives a crash.  durable_mkdirs creates missing directories and
 * fsyncs the parent of each one it creates, for the same reason.
 *
 * Possible failure modes are:
 * - the directory is missing or not writable (SH_ENOTFOUND, SH_EIO): nothing
 *   is created;
 * - the disk fills up or the write/fsync fails (SH_ENOSPC, SH_EIO): the temp
 *   file is removed and the target keeps its previous content, if any;
 * - the final directory fsync fails: the new content is already visible
 *   under the target name but may not survive a crash; the error is
 *   returned so the caller does not acknowledge the write.
 *
 * There is no error message buffer in this API, so details are logged. */
#include "storage/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"

int storage__errno(int err)
{
    switch (err) {
        case ENOENT:
            return SH_ENOTFOUND;
        case EEXIST:
            return SH_EEXIST;
        case ENOSPC:
        case EDQUOT:
            return SH_ENOSPC;
        case ENOMEM:
            return SH_ENOMEM;
        default:
            return SH_EIO;
    }
}

int storage__pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return storage__errno(errno);
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int storage__pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return storage__errno(errno);
        }
        if (n == 0)
            return SH_ECORRUPT; /* the file is shorter than it claims */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int durable_fsync_dir(const char *dir)
{
    char eb[128];
    int fd;
    int rv = 0;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to open directory '%s': %s", dir,
                 strerror_r(errno, eb, sizeof eb));
        return rv;
    }
    if (fsync(fd) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to fsync directory '%s': %s", dir,
                 strerror_r(errno, eb, sizeof eb));
    }
    close(fd);
    return rv;
}

int storage__fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int rv;

    if (slash == NULL)
        return durable_fsync_dir(".");
    if (slash == path)
        return durable_fsync_dir("/");
    dir = sh_strndup(path, (size_t)(slash - path));
    rv = durable_fsync_dir(dir);
    free(dir);
    return rv;
}

int durable_write_file(const char *path, const void *data, size_t len)
{
    char eb[128];
    char *tmp;
    int fd;
    int rv;

    tmp = sh_asprintf("%s.tmp.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to create '%s': %s", tmp,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_alloc;
    }
    if (fchmod(fd, 0640) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to chmod '%s': %s", tmp,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_open;
    }
    rv = storage__pwrite_all(fd, data, len, 0);
    if (rv != 0) {
        SH_ERROR("unable to write '%s': %s", tmp,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_open;
    }
    if (fsync(fd) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to fsync '%s': %s", tmp,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_open;
    }
    if (close(fd) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to close '%s': %s", tmp,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_create;
    }
    if (rename(tmp, path) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to rename '%s' to '%s': %s", tmp, path,
                 strerror_r(errno, eb, sizeof eb));
        goto err_after_tmp_create;
    }
    /* The write becomes durable when the directory entry is on disk. */
    rv = storage__fsync_parent(path);
    free(tmp);
    return rv;

err_after_tmp_open:
    close(fd);
err_after_tmp_create:
    unlink(tmp);
err_after_tmp_alloc:
    free(tmp);
    return rv;
}

/* mkdir one level; 1 if created, 0 if it already was a directory. */
static int mkdir_one(const char *path)
{
    char eb[128];
    struct stat st;

    if (mkdir(path, 0750) == 0)
        return 1;
    if (errno == EEXIST) {
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        SH_ERROR("unable to create directory '%s': not a directory", path);
        return -SH_EEXIST;
    }
    SH_ERROR("unable to create directory '%s': %s", path,
             strerror_r(errno, eb, sizeof eb));
    return -storage__errno(errno);
}

int durable_mkdirs(const char *path)
{
    char *p = sh_strdup(path);
    size_t len = strlen(p);
    int rv = 0;

    PRE(len > 0);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    /* Walk every prefix ending before a '/', then the whole path.  The
     * parent of each directory we create is fsync'ed so the new entry is
     * durable, not just the directory itself. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        if (i < len && p[i - 1] == '/')
            continue; /* "a//b" */
        p[i] = '\0';
        int made = mkdir_one(p);
        if (made < 0) {
            rv = -made;
        } else if (made == 1) {
            rv = storage__fsync_parent(p);
        }
        if (i < len)
            p[i] = '/';
        if (rv != 0)
            break;
    }
    free(p);
    return rv;
}
