/* Fragments shared by the consensus unit tests: a real meta store in a
 * temporary directory (both from the storage fixture), commands built on
 * the stack, and a full dump of the database to prove that a refused
 * command wrote nothing.  State is read back only through storage.h. */
#ifndef SHOAL_TEST_UNIT_CONSENSUS_FIXTURE_H
#define SHOAL_TEST_UNIT_CONSENSUS_FIXTURE_H

#include "../storage/fixture.h"

#define DIGEST_A \
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
#define DIGEST_B \
    "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
#define DIGEST_C \
    "sha256:c0ffee0000000000000000000000000000000000000000000000000000000000"
#define DIGEST_S \
    "sha256:5ab1ec7000000000000000000000000000000000000000000000000000000000"

/* ---- meta in a temporary directory ---- */

struct fx_meta {
    char *dir;      /* owned: temporary directory */
    struct meta *m; /* open store in dir "/db" */
};

static inline void fx_meta_open(struct fx_meta *f)
{
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *db;

    f->dir = fx_tmpdir();
    db = sh_asprintf("%s/db", f->dir);
    assert_int_equal(meta_open(db, &f->m, errmsg), 0);
    assert_non_null(f->m);
    free(db);
    fx_log_capture();
}

/* Close the store, prove nothing was logged as an error and the
 * directory is gone. */
static inline void fx_meta_close(struct fx_meta *f)
{
    assert_int_equal(fx_log.errors, 0);
    fx_log_restore();
    meta_close(f->m);
    f->m = NULL;
    fx_rmtree(f->dir);
    f->dir = NULL;
}

/* ---- reading state back ---- */

/* Every key and value of the database, in order, as printable text:
 * "key=value\n" with bytes outside 0x21..0x7e as \xx.  Caller frees. */
static inline char *fx_dump(struct meta *m)
{
    struct sh_buf out = SH_BUF_INIT;
    struct meta_iter *it = meta_iter_new(m, "", 0, NULL, 0);

    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        for (int part = 0; part < 2; part++) {
            const unsigned char *p = (const unsigned char *)(part ? v : k);
            size_t n = part ? vlen : klen;
            for (size_t i = 0; i < n; i++) {
                if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '=')
                    sh_buf_addch(&out, (char)p[i]);
                else
                    sh_buf_addf(&out, "\\%02x", p[i]);
            }
            sh_buf_addch(&out, part ? '\n' : '=');
        }
    }
    meta_iter_free(it);
    return sh_buf_detach(&out, NULL);
}

/* Number of keys in the database. */
static inline int fx_count_keys(struct meta *m)
{
    struct meta_iter *it = meta_iter_new(m, "", 0, NULL, 0);
    int n = 0;

    for (; meta_iter_valid(it); meta_iter_next(it))
        n++;
    meta_iter_free(it);
    return n;
}

/* Value of `key` (built by a meta_key_* call); NULL if absent.  Caller
 * frees. */
static inline char *fx_get(struct meta *m,
                           const struct sh_buf *key,
                           size_t *vlen)
{
    char *v = NULL;
    int rv = meta_get(m, key->data, key->len, &v, vlen);

    if (rv == SH_ENOTFOUND)
        return NULL;
    assert_int_equal(rv, SH_OK);
    return v;
}

/* ---- commands on the stack ---- */

/* Storage for every kind of command, so builders need no allocation. */
struct fx_cmd {
    Shoal__Command cmd;
    Shoal__PutManifest put_manifest;
    Shoal__ManifestRecord manifest;
    Shoal__DeleteManifest delete_manifest;
    Shoal__DeleteTag delete_tag;
    Shoal__BlobCommit blob_commit;
    Shoal__BlobRecord blob;
    Shoal__Layout layout;
    Shoal__BlobLink blob_link;
    Shoal__BlobUnlink blob_unlink;
    Shoal__BlobPlace blob_place;
    Shoal__BlobDrop blob_drop;
    Shoal__ShardPlacement place[3];
    Shoal__ShardPlacement *places[3];
};

static inline void fx_cmd_reset(struct fx_cmd *c)
{
    static const Shoal__Command cmd = SHOAL__COMMAND__INIT;
    static const Shoal__PutManifest pm = SHOAL__PUT_MANIFEST__INIT;
    static const Shoal__ManifestRecord mr = SHOAL__MANIFEST_RECORD__INIT;
    static const Shoal__DeleteManifest dm = SHOAL__DELETE_MANIFEST__INIT;
    static const Shoal__DeleteTag dt = SHOAL__DELETE_TAG__INIT;
    static const Shoal__BlobCommit bc = SHOAL__BLOB_COMMIT__INIT;
    static const Shoal__BlobRecord br = SHOAL__BLOB_RECORD__INIT;
    static const Shoal__Layout ly = SHOAL__LAYOUT__INIT;
    static const Shoal__BlobLink bl = SHOAL__BLOB_LINK__INIT;
    static const Shoal__BlobUnlink bu = SHOAL__BLOB_UNLINK__INIT;
    static const Shoal__BlobPlace bp = SHOAL__BLOB_PLACE__INIT;
    static const Shoal__BlobDrop bd = SHOAL__BLOB_DROP__INIT;

    c->cmd = cmd;
    c->put_manifest = pm;
    c->manifest = mr;
    c->delete_manifest = dm;
    c->delete_tag = dt;
    c->blob_commit = bc;
    c->blob = br;
    c->layout = ly;
    c->blob_link = bl;
    c->blob_unlink = bu;
    c->blob_place = bp;
    c->blob_drop = bd;
}

/* PutManifest of `content` as `digest` in `repo`; tag, subject and
 * descriptor may be NULL. */
static inline Shoal__Command *fx_put_manifest(struct fx_cmd *c,
                                              const char *repo,
                                              const char *digest,
                                              const char *content,
                                              const char *tag,
                                              const char *subject,
                                              const char *descriptor)
{
    fx_cmd_reset(c);
    c->manifest.version = SH_RECORD_VERSION;
    c->manifest.media_type =
        (char *)"application/vnd.oci.image.manifest.v1+json";
    c->manifest.content.data = (uint8_t *)content;
    c->manifest.content.len = strlen(content);
    if (subject != NULL)
        c->manifest.subject = (char *)subject;
    c->manifest.created_unix = 1700000000;
    c->put_manifest.repo = (char *)repo;
    c->put_manifest.digest = (char *)digest;
    c->put_manifest.record = &c->manifest;
    if (tag != NULL)
        c->put_manifest.tag = (char *)tag;
    if (descriptor != NULL) {
        c->put_manifest.referrer_descriptor.data = (uint8_t *)descriptor;
        c->put_manifest.referrer_descriptor.len = strlen(descriptor);
    }
    c->cmd.op_case = SHOAL__COMMAND__OP_PUT_MANIFEST;
    c->cmd.put_manifest = &c->put_manifest;
    return &c->cmd;
}

static inline Shoal__Command *fx_delete_manifest(struct fx_cmd *c,
                                                 const char *repo,
                                                 const char *digest)
{
    fx_cmd_reset(c);
    c->delete_manifest.repo = (char *)repo;
    c->delete_manifest.digest = (char *)digest;
    c->cmd.op_case = SHOAL__COMMAND__OP_DELETE_MANIFEST;
    c->cmd.delete_manifest = &c->delete_manifest;
    return &c->cmd;
}

static inline Shoal__Command *fx_delete_tag(struct fx_cmd *c,
                                            const char *repo,
                                            const char *tag)
{
    fx_cmd_reset(c);
    c->delete_tag.repo = (char *)repo;
    c->delete_tag.tag = (char *)tag;
    c->cmd.op_case = SHOAL__COMMAND__OP_DELETE_TAG;
    c->cmd.delete_tag = &c->delete_tag;
    return &c->cmd;
}

static inline Shoal__Command *fx_blob_commit(struct fx_cmd *c,
                                             const char *repo,
                                             const char *digest,
                                             uint64_t size)
{
    fx_cmd_reset(c);
    c->layout.k = 1;
    c->layout.shard_size = 1 << 20;
    c->blob.version = SH_RECORD_VERSION;
    c->blob.digest = (char *)digest;
    c->blob.size = size;
    c->blob.layout = &c->layout;
    c->blob.state = SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE;
    c->blob_commit.repo = (char *)repo;
    c->blob_commit.record = &c->blob;
    c->cmd.op_case = SHOAL__COMMAND__OP_BLOB_COMMIT;
    c->cmd.blob_commit = &c->blob_commit;
    return &c->cmd;
}

static inline Shoal__Command *fx_blob_place(struct fx_cmd *c,
                                            const char *digest,
                                            unsigned index, uint64_t from,
                                            uint64_t to)
{
    fx_cmd_reset(c);
    c->blob_place.digest = (char *)digest;
    c->blob_place.index = index;
    c->blob_place.from_node = from;
    c->blob_place.to_node = to;
    c->cmd.op_case = SHOAL__COMMAND__OP_BLOB_PLACE;
    c->cmd.blob_place = &c->blob_place;
    return &c->cmd;
}

static inline Shoal__Command *fx_blob_link(struct fx_cmd *c,
                                           const char *repo,
                                           const char *digest)
{
    fx_cmd_reset(c);
    c->blob_link.repo = (char *)repo;
    c->blob_link.digest = (char *)digest;
    c->cmd.op_case = SHOAL__COMMAND__OP_BLOB_LINK;
    c->cmd.blob_link = &c->blob_link;
    return &c->cmd;
}

static inline Shoal__Command *fx_blob_drop(struct fx_cmd *c,
                                           const char *digest,
                                           uint64_t before_unix)
{
    fx_cmd_reset(c);
    c->blob_drop.digest = (char *)digest;
    c->blob_drop.before_unix = before_unix;
    c->cmd.op_case = SHOAL__COMMAND__OP_BLOB_DROP;
    c->cmd.blob_drop = &c->blob_drop;
    return &c->cmd;
}

static inline Shoal__Command *fx_blob_unlink(struct fx_cmd *c,
                                             const char *repo,
                                             const char *digest)
{
    fx_cmd_reset(c);
    c->blob_unlink.repo = (char *)repo;
    c->blob_unlink.digest = (char *)digest;
    c->cmd.op_case = SHOAL__COMMAND__OP_BLOB_UNLINK;
    c->cmd.blob_unlink = &c->blob_unlink;
    return &c->cmd;
}

#endif
