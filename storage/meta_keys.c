/* Key formats of the metadata store: the only place they are spelled out.
 *
 *   "r/" repo                              repository record
 *   "t/" repo "\0" tag                     tag -> manifest digest
 *   "m/" repo "\0" digest                  manifest record
 *   "b/" digest                            blob record (global)
 *   "l/" repo "\0" digest                  blob linked into a repository
 *   "f/" repo "\0" subject "\0" digest     referrer of `subject`
 *   "x/" blob "\0" repo "\0" manifest        manifest references blob (GC)
 *   "y/" blob "\0" repo                     blob linked into repo: link time
 *   "u/" uuid                              upload session (local)
 *   "n/" id (16 hex digits)                cluster member
 *   "s/applied"                            last applied log index (local)
 *   "s/index"                              format of the x and y indexes
 *
 * Replicated families (what a Raft snapshot carries): r, t, m, b, l, f, x,
 * y, n, a, k.
 * Local families (this node's own bookkeeping): u, s.
 *
 * The happy path is: a builder resets the caller's buffer and writes the key;
 * prefix builders end with the '\0' separator, so a scan of repository "a"
 * never reaches "a/b" or "ab" (both sort after "a\0" and do not start
 * with it).  Repository names, tags and digests are C strings and so cannot
 * contain the separator.
 *
 * Possible failure modes are: none; the extractors return NULL for a key of
 * a family they do not understand. */
#include <string.h>

#include "storage/storage.h"

/* Start `key` with the 2-byte family prefix. */
static void key_start(struct sh_buf *key, char family)
{
    char head[2] = {family, '/'};

    sh_buf_reset(key);
    sh_buf_add(key, head, sizeof head);
}

/* Append a component followed by the '\0' separator.  The byte lands in the
 * buffer's data (len counts it); the buffer keeps its own terminator. */
static void key_add_sep(struct sh_buf *key, const char *part)
{
    sh_buf_add(key, part, strlen(part) + 1);
}

void meta_key_repo(struct sh_buf *key, const char *repo)
{
    key_start(key, 'r');
    sh_buf_addstr(key, repo);
}

void meta_key_repo_prefix(struct sh_buf *key)
{
    key_start(key, 'r');
}

void meta_key_tag(struct sh_buf *key, const char *repo, const char *tag)
{
    key_start(key, 't');
    key_add_sep(key, repo);
    sh_buf_addstr(key, tag);
}

void meta_key_tag_prefix(struct sh_buf *key, const char *repo)
{
    key_start(key, 't');
    key_add_sep(key, repo);
}

void meta_key_manifest(struct sh_buf *key, const char *repo, const char *digest)
{
    key_start(key, 'm');
    key_add_sep(key, repo);
    sh_buf_addstr(key, digest);
}

void meta_key_manifest_all(struct sh_buf *key)
{
    key_start(key, 'm');
}

void meta_key_blob(struct sh_buf *key, const char *digest)
{
    key_start(key, 'b');
    sh_buf_addstr(key, digest);
}

void meta_key_link(struct sh_buf *key, const char *repo, const char *digest)
{
    key_start(key, 'l');
    key_add_sep(key, repo);
    sh_buf_addstr(key, digest);
}

void meta_key_link_prefix(struct sh_buf *key, const char *repo)
{
    key_start(key, 'l');
    key_add_sep(key, repo);
}

void meta_key_blob_ref(struct sh_buf *key, const char *blob, const char *repo,
                       const char *manifest)
{
    key_start(key, 'x');
    key_add_sep(key, blob);
    key_add_sep(key, repo);
    sh_buf_addstr(key, manifest);
}

void meta_key_blob_ref_prefix(struct sh_buf *key, const char *blob)
{
    key_start(key, 'x');
    key_add_sep(key, blob);
}

void meta_key_blob_repo(struct sh_buf *key, const char *blob, const char *repo)
{
    key_start(key, 'y');
    key_add_sep(key, blob);
    sh_buf_addstr(key, repo);
}

void meta_key_blob_repo_prefix(struct sh_buf *key, const char *blob)
{
    key_start(key, 'y');
    key_add_sep(key, blob);
}

void meta_key_link_all(struct sh_buf *key)
{
    key_start(key, 'l');
}

void meta_key_referrer(struct sh_buf *key,
                       const char *repo,
                       const char *subject,
                       const char *digest)
{
    key_start(key, 'f');
    key_add_sep(key, repo);
    key_add_sep(key, subject);
    sh_buf_addstr(key, digest);
}

void meta_key_referrer_prefix(struct sh_buf *key,
                              const char *repo,
                              const char *subject)
{
    key_start(key, 'f');
    key_add_sep(key, repo);
    key_add_sep(key, subject);
}

void meta_key_upload(struct sh_buf *key, const char *uuid)
{
    key_start(key, 'u');
    sh_buf_addstr(key, uuid);
}

void meta_key_upload_prefix(struct sh_buf *key)
{
    key_start(key, 'u');
}

void meta_key_member(struct sh_buf *key, uint64_t id)
{
    key_start(key, 'n');
    sh_buf_addf(key, "%016llx", (unsigned long long)id);
}

void meta_key_member_prefix(struct sh_buf *key)
{
    key_start(key, 'n');
}

void meta_key_account(struct sh_buf *key, const char *name)
{
    key_start(key, 'a');
    sh_buf_addstr(key, name);
}

void meta_key_account_prefix(struct sh_buf *key)
{
    key_start(key, 'a');
}

void meta_key_signing_key(struct sh_buf *key, const char *kid)
{
    key_start(key, 'k');
    sh_buf_addstr(key, kid);
}

void meta_key_signing_key_prefix(struct sh_buf *key)
{
    key_start(key, 'k');
}

void meta_key_applied(struct sh_buf *key)
{
    key_start(key, 's');
    sh_buf_addstr(key, "applied");
}

void meta_key_index_version(struct sh_buf *key)
{
    key_start(key, 's');
    sh_buf_addstr(key, "index");
}

bool meta_key_replicated(const char *key, size_t klen)
{
    if (klen < 2 || key[1] != '/')
        return false;
    switch (key[0]) {
        case 'r':
        case 't':
        case 'm':
        case 'b':
        case 'l':
        case 'f':
        case 'x':
        case 'y':
        case 'n':
        case 'a':
        case 'k':
            return true;
        default:
            return false;
    }
}

/* The last component: what follows the last '\0', or for single-component
 * keys ("r/", "b/", "u/") what follows the family prefix. */
const char *meta_key_last(const char *key, size_t klen, size_t *len)
{
    const char *sep = memrchr(key, '\0', klen);

    if (sep != NULL) {
        *len = klen - (size_t)(sep + 1 - key);
        return sep + 1;
    }
    if (klen >= 2 && key[1] == '/') {
        *len = klen - 2;
        return key + 2;
    }
    *len = 0;
    return NULL;
}

/* The repository: from after the family prefix up to the first '\0'.
 * Works for every family keyed by repository first (r, t, m, l, f); NULL
 * for the others. */
const char *meta_key_repo_name(const char *key, size_t klen, size_t *len)
{
    const char *end;

    *len = 0;
    if (klen < 2 || key[1] != '/' || strchr("rtmlf", key[0]) == NULL ||
        key[0] == '\0')
        return NULL;
    end = memchr(key + 2, '\0', klen - 2);
    *len = end != NULL ? (size_t)(end - key - 2) : klen - 2;
    return key + 2;
}
