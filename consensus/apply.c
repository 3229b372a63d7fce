/* Appliers of the registry commands.  Each one only adds puts and deletes
 * to the batch its caller writes atomically, and validates what it needs
 * from the current state first, so a refused command changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "fsm.h"

static int need(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Delete `key` if present; SH_ENOTFOUND (nothing added) otherwise. */
static int del_existing(struct meta *m, struct meta_batch *b,
                        const struct sh_buf *key)
{
    if (!meta_has(m, key->data, key->len))
        return SH_ENOTFOUND;
    meta_batch_del(b, key->data, key->len);
    return SH_OK;
}

static void put_repo(struct meta_batch *b, struct sh_buf *key, const char *repo)
{
    meta_key_repo(key, repo);
    meta_batch_put(b, key->data, key->len, "", 0);
}

/* Link `digest` into `repo` at `at_unix`: the link and its blob-first
 * twin, which carries the time GC's grace period counts from. */
static void link_put(struct meta_batch *b, struct sh_buf *key,
                     const char *repo, const char *digest, uint64_t at_unix)
{
    unsigned char at[8];

    put_repo(b, key, repo);
    meta_key_link(key, repo, digest);
    meta_batch_put(b, key->data, key->len, "", 0);
    for (int i = 0; i < 8; i++)
        at[i] = (unsigned char)(at_unix >> (8 * i));
    meta_key_blob_repo(key, digest, repo);
    meta_batch_put(b, key->data, key->len, at, sizeof at);
}

uint64_t fsm__link_time(const char *val, size_t vlen)
{
    uint64_t at = 0;

    if (vlen != 8)
        return 0; /* linked before link times were kept: long ago */
    for (int i = 7; i >= 0; i--)
        at = at << 8 | (unsigned char)val[i];
    return at;
}

int fsm__apply_put_manifest(struct meta *m, struct meta_batch *b,
                            const Shoal__PutManifest *op)
{
    struct sh_buf key = SH_BUF_INIT;
    uint8_t *val;
    size_t vlen;

    if (!need(op->repo) || !need(op->digest) || op->record == NULL)
        return SH_EMALFORMED;
    /* Every stored blob it references is linked into the repository now,
     * in log order: a BlobDrop (GC) or BlobUnlink applied after the API
     * checked makes the manifest refused here, never dangling. */
    for (size_t i = 0; i < op->record->n_blob_refs; i++) {
        if (!need(op->record->blob_refs[i]))
            return SH_EMALFORMED;
        meta_key_link(&key, op->repo, op->record->blob_refs[i]);
        if (!meta_has(m, key.data, key.len)) {
            sh_buf_release(&key);
            return SH_ENOTFOUND;
        }
    }
    put_repo(b, &key, op->repo);
    for (size_t i = 0; i < op->record->n_blob_refs; i++) {
        meta_key_blob_ref(&key, op->record->blob_refs[i], op->repo,
                          op->digest);
        meta_batch_put(b, key.data, key.len, "", 0);
    }

    vlen = shoal__manifest_record__get_packed_size(op->record);
    val = sh_malloc(vlen);
    shoal__manifest_record__pack(op->record, val);
    meta_key_manifest(&key, op->repo, op->digest);
    meta_batch_put(b, key.data, key.len, val, vlen);
    free(val);

    if (need(op->tag)) {
        meta_key_tag(&key, op->repo, op->tag);
        meta_batch_put(b, key.data, key.len, op->digest, strlen(op->digest));
    }
    if (need(op->record->subject) && op->referrer_descriptor.len > 0) {
        meta_key_referrer(&key, op->repo, op->record->subject, op->digest);
        meta_batch_put(b, key.data, key.len, op->referrer_descriptor.data,
                       op->referrer_descriptor.len);
    }
    sh_buf_release(&key);
    return SH_OK;
}

int fsm__apply_delete_manifest(struct meta *m, struct meta_batch *b,
                               const Shoal__DeleteManifest *op)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__ManifestRecord *rec;
    struct meta_iter *it;
    char *val;
    size_t vlen, dlen = strlen(op->digest);
    int rv;

    if (!need(op->repo) || !need(op->digest))
        return SH_EMALFORMED;
    meta_key_manifest(&key, op->repo, op->digest);
    rv = meta_get(m, key.data, key.len, &val, &vlen);
    if (rv != SH_OK) {
        sh_buf_release(&key);
        return rv;
    }
    meta_batch_del(b, key.data, key.len);
    rec = shoal__manifest_record__unpack(NULL, vlen, (uint8_t *)val);
    free(val);
    if (rec != NULL && need(rec->subject)) {
        meta_key_referrer(&key, op->repo, rec->subject, op->digest);
        meta_batch_del(b, key.data, key.len);
    }
    for (size_t i = 0; rec != NULL && i < rec->n_blob_refs; i++) {
        meta_key_blob_ref(&key, rec->blob_refs[i], op->repo, op->digest);
        meta_batch_del(b, key.data, key.len);
    }
    if (rec != NULL)
        shoal__manifest_record__free_unpacked(rec, NULL);

    /* Every tag that points at the manifest goes with it. */
    meta_key_tag_prefix(&key, op->repo);
    it = meta_iter_new(m, key.data, key.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        if (vlen == dlen && memcmp(v, op->digest, dlen) == 0)
            meta_batch_del(b, k, klen);
    }
    meta_iter_free(it);
    sh_buf_release(&key);
    return SH_OK;
}

int fsm__apply_delete_tag(struct meta *m, struct meta_batch *b,
                          const Shoal__DeleteTag *op)
{
    struct sh_buf key = SH_BUF_INIT;
    int rv;

    if (!need(op->repo) || !need(op->tag))
        return SH_EMALFORMED;
    meta_key_tag(&key, op->repo, op->tag);
    rv = del_existing(m, b, &key);
    sh_buf_release(&key);
    return rv;
}

int fsm__apply_blob_commit(struct meta *m, struct meta_batch *b,
                           const Shoal__BlobCommit *op)
{
    struct sh_buf key = SH_BUF_INIT;

    if (!need(op->repo) || op->record == NULL || !need(op->record->digest))
        return SH_EMALFORMED;
    /* Content-addressed: a blob committed twice keeps its first record. */
    meta_key_blob(&key, op->record->digest);
    if (!meta_has(m, key.data, key.len)) {
        size_t vlen = shoal__blob_record__get_packed_size(op->record);
        uint8_t *val = sh_malloc(vlen);
        shoal__blob_record__pack(op->record, val);
        meta_batch_put(b, key.data, key.len, val, vlen);
        free(val);
    }
    link_put(b, &key, op->repo, op->record->digest, op->record->created_unix);
    sh_buf_release(&key);
    return SH_OK;
}

/* BlobPlace with from_node 0: one more full copy of a blob of copies, as
 * copy `index` on `to_node`.  Only the next copy (index m + 1, so the
 * layout's m becomes index) on a node that holds none of the blob. */
static bool copy_add(Shoal__BlobRecord *rec, const Shoal__BlobPlace *op)
{
    if (rec->layout == NULL || rec->layout->k != 1 ||
        op->index != rec->layout->m + 1 || op->index >= EC_MAX_SHARDS)
        return false;
    for (size_t i = 0; i < rec->n_placement; i++)
        if (rec->placement[i]->node_id == op->to_node ||
            rec->placement[i]->index == op->index)
            return false;
    return true;
}

int fsm__apply_blob_place(struct meta *m, struct meta_batch *b,
                          const Shoal__BlobPlace *op)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__BlobRecord *rec = NULL;
    Shoal__ShardPlacement add = SHOAL__SHARD_PLACEMENT__INIT;
    Shoal__ShardPlacement **kept = NULL, **grown = NULL;
    size_t n_kept = 0;
    char *val = NULL;
    size_t vlen;
    int rv;

    if (!need(op->digest) || op->to_node == 0)
        return SH_EMALFORMED;
    meta_key_blob(&key, op->digest);
    rv = meta_get(m, key.data, key.len, &val, &vlen);
    if (rv == SH_OK) {
        rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)val);
        rv = rec != NULL ? SH_ENOTFOUND : SH_ECORRUPT;
    }
    for (size_t i = 0; rec != NULL && op->from_node != 0 &&
                       i < rec->n_placement;
         i++) {
        Shoal__ShardPlacement *p = rec->placement[i];
        if (p->index == op->index && p->node_id == op->from_node) {
            p->node_id = op->to_node;
            rv = SH_OK;
            break;
        }
    }
    if (rec != NULL && op->from_node == 0 && copy_add(rec, op)) {
        /* The record's own array stays as unpacked (freed with it). */
        kept = rec->placement;
        n_kept = rec->n_placement;
        grown = sh_malloc((n_kept + 1) * sizeof *grown);
        if (n_kept > 0)
            memcpy(grown, kept, n_kept * sizeof *grown);
        add.index = op->index;
        add.node_id = op->to_node;
        grown[n_kept] = &add;
        rec->placement = grown;
        rec->n_placement = n_kept + 1;
        rec->layout->m = op->index;
        rv = SH_OK;
    }
    if (rv == SH_OK) {
        size_t n = shoal__blob_record__get_packed_size(rec);
        uint8_t *out = sh_malloc(n);
        shoal__blob_record__pack(rec, out);
        meta_batch_put(b, key.data, key.len, out, n);
        free(out);
    }
    if (grown != NULL) {
        rec->placement = kept;
        rec->n_placement = n_kept;
        free(grown);
    }
    if (rec != NULL)
        shoal__blob_record__free_unpacked(rec, NULL);
    free(val);
    sh_buf_release(&key);
    return rv;
}

int fsm__apply_blob_link(struct meta *m, struct meta_batch *b,
                         const Shoal__BlobLink *op)
{
    struct sh_buf key = SH_BUF_INIT;
    int rv = SH_OK;

    if (!need(op->repo) || !need(op->digest))
        return SH_EMALFORMED;
    meta_key_blob(&key, op->digest);
    if (!meta_has(m, key.data, key.len)) {
        rv = SH_ENOTFOUND;
    } else {
        link_put(b, &key, op->repo, op->digest, op->at_unix);
    }
    sh_buf_release(&key);
    return rv;
}

int fsm__apply_blob_unlink(struct meta *m, struct meta_batch *b,
                           const Shoal__BlobUnlink *op)
{
    struct sh_buf key = SH_BUF_INIT;
    int rv;

    if (!need(op->repo) || !need(op->digest))
        return SH_EMALFORMED;
    meta_key_link(&key, op->repo, op->digest);
    rv = del_existing(m, b, &key);
    if (rv == SH_OK) {
        meta_key_blob_repo(&key, op->digest, op->repo);
        meta_batch_del(b, key.data, key.len);
    }
    sh_buf_release(&key);
    return rv;
}

/* Whether a key starting with `prefix` exists. */
static bool any_under(struct meta *m, const struct sh_buf *prefix)
{
    struct meta_iter *it = meta_iter_new(m, prefix->data, prefix->len, NULL, 0);
    bool any = meta_iter_valid(it);

    meta_iter_free(it);
    return any;
}

/* SH_OK when every link of the blob (y/ keys under `prefix`) is at or
 * before `before`, adding their deletes (and those of the l/ twins) to
 * `b` when `b` is not NULL; SH_EBUSY otherwise. */
static int links_old(struct meta *m, struct meta_batch *b,
                     const struct sh_buf *prefix, const char *digest,
                     uint64_t before)
{
    struct meta_iter *it = meta_iter_new(m, prefix->data, prefix->len, NULL, 0);
    struct sh_buf link = SH_BUF_INIT;
    int rv = SH_OK;

    for (; rv == SH_OK && meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen, rlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        const char *repo = meta_key_last(k, klen, &rlen);
        char *name;

        if (fsm__link_time(v, vlen) > before) {
            rv = SH_EBUSY;
            break;
        }
        if (b == NULL || repo == NULL)
            continue;
        meta_batch_del(b, k, klen);
        name = sh_strndup(repo, rlen);
        meta_key_link(&link, name, digest);
        meta_batch_del(b, link.data, link.len);
        free(name);
    }
    meta_iter_free(it);
    sh_buf_release(&link);
    return rv;
}

int cons_blob_droppable(struct meta *m, const char *digest,
                        uint64_t before_unix)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__BlobRecord *rec;
    char *val;
    size_t vlen;
    int rv;

    meta_key_blob(&key, digest);
    rv = meta_get(m, key.data, key.len, &val, &vlen);
    if (rv != SH_OK) {
        sh_buf_release(&key);
        return rv;
    }
    rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)val);
    free(val);
    if (rec == NULL) {
        sh_buf_release(&key);
        return SH_ECORRUPT;
    }
    rv = rec->created_unix > before_unix ? SH_EBUSY : SH_OK;
    shoal__blob_record__free_unpacked(rec, NULL);
    meta_key_blob_ref_prefix(&key, digest);
    if (rv == SH_OK && any_under(m, &key))
        rv = SH_EBUSY;
    meta_key_blob_repo_prefix(&key, digest);
    if (rv == SH_OK)
        rv = links_old(m, NULL, &key, digest, before_unix);
    sh_buf_release(&key);
    return rv;
}

int fsm__apply_blob_drop(struct meta *m, struct meta_batch *b,
                         const Shoal__BlobDrop *op)
{
    struct sh_buf key = SH_BUF_INIT;
    int rv;

    if (!need(op->digest))
        return SH_EMALFORMED;
    /* Checked in log order, so a PutManifest or link applied after the
     * proposer looked keeps the blob: this is where GC's race with a push
     * is decided. */
    rv = cons_blob_droppable(m, op->digest, op->before_unix);
    if (rv != SH_OK)
        return rv;
    meta_key_blob_repo_prefix(&key, op->digest);
    links_old(m, b, &key, op->digest, op->before_unix);
    meta_key_blob(&key, op->digest);
    meta_batch_del(b, key.data, key.len);
    sh_buf_release(&key);
    return SH_OK;
}

int fsm__apply_member_put(struct meta *m, struct meta_batch *b,
                          const Shoal__MemberPut *op)
{
    struct sh_buf key = SH_BUF_INIT;
    size_t vlen;
    uint8_t *val;

    (void)m;
    if (op->record == NULL || op->record->id == 0 ||
        !need(op->record->raft_address) || !need(op->record->url))
        return SH_EMALFORMED;
    meta_key_member(&key, op->record->id);
    vlen = shoal__member_record__get_packed_size(op->record);
    val = sh_malloc(vlen);
    shoal__member_record__pack(op->record, val);
    meta_batch_put(b, key.data, key.len, val, vlen);
    free(val);
    sh_buf_release(&key);
    return SH_OK;
}
