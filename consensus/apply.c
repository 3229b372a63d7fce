/* Appliers of the registry commands.  Each one only adds puts and deletes
 * to the batch its caller writes atomically, and validates what it needs
 * from the current state first, so a refused command changes nothing. */
#include <string.h>

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

int fsm__apply_put_manifest(struct meta *m, struct meta_batch *b,
                            const Shoal__PutManifest *op)
{
    struct sh_buf key = SH_BUF_INIT;
    uint8_t *val;
    size_t vlen;

    (void)m;
    if (!need(op->repo) || !need(op->digest) || op->record == NULL)
        return SH_EMALFORMED;
    put_repo(b, &key, op->repo);

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
    put_repo(b, &key, op->repo);
    meta_key_link(&key, op->repo, op->record->digest);
    meta_batch_put(b, key.data, key.len, "", 0);
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
        put_repo(b, &key, op->repo);
        meta_key_link(&key, op->repo, op->digest);
        meta_batch_put(b, key.data, key.len, "", 0);
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
    sh_buf_release(&key);
    return rv;
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
