/* FSM dispatch (dqlite src/fsm.c): decode the versioned command, hand it
 * to its applier, write the resulting batch atomically.  An undecodable
 * command or unknown type/version is refused with SH_EMALFORMED and changes
 * nothing. */
#include "fsm.h"

#include <stdlib.h>

/* Decode and add the command's changes to `b`; the command's result. */
static int fsm_fill(struct meta *m, struct meta_batch *b, const uint8_t *buf,
                    size_t len)
{
    Shoal__Command *cmd;
    int rv;

    rv = sh_command_decode(buf, len, &cmd);
    if (rv != SH_OK)
        return rv;
    switch (cmd->op_case) {
        case SHOAL__COMMAND__OP_PUT_MANIFEST:
            rv = fsm__apply_put_manifest(m, b, cmd->put_manifest);
            break;
        case SHOAL__COMMAND__OP_DELETE_MANIFEST:
            rv = fsm__apply_delete_manifest(m, b, cmd->delete_manifest);
            break;
        case SHOAL__COMMAND__OP_DELETE_TAG:
            rv = fsm__apply_delete_tag(m, b, cmd->delete_tag);
            break;
        case SHOAL__COMMAND__OP_BLOB_COMMIT:
            rv = fsm__apply_blob_commit(m, b, cmd->blob_commit);
            break;
        case SHOAL__COMMAND__OP_BLOB_LINK:
            rv = fsm__apply_blob_link(m, b, cmd->blob_link);
            break;
        case SHOAL__COMMAND__OP_BLOB_UNLINK:
            rv = fsm__apply_blob_unlink(m, b, cmd->blob_unlink);
            break;
        case SHOAL__COMMAND__OP_BLOB_PLACE:
            rv = fsm__apply_blob_place(m, b, cmd->blob_place);
            break;
        case SHOAL__COMMAND__OP_BLOB_DROP:
            rv = fsm__apply_blob_drop(m, b, cmd->blob_drop);
            break;
        case SHOAL__COMMAND__OP_MEMBER_PUT:
            rv = fsm__apply_member_put(m, b, cmd->member_put);
            break;
        case SHOAL__COMMAND__OP_ACCOUNT_PUT:
            rv = fsm__apply_account_put(m, b, cmd->account_put);
            break;
        case SHOAL__COMMAND__OP_ACCOUNT_DELETE:
            rv = fsm__apply_account_delete(m, b, cmd->account_delete);
            break;
        case SHOAL__COMMAND__OP_ACCOUNT_USED:
            rv = fsm__apply_account_used(m, b, cmd->account_used);
            break;
        case SHOAL__COMMAND__OP_SIGNING_KEY_PUT:
            rv = fsm__apply_signing_key_put(m, b, cmd->signing_key_put);
            break;
        default:
            rv = SH_EMALFORMED;
    }
    sh_command_free(cmd);
    return rv;
}

int fsm_apply(struct meta *m, const uint8_t *buf, size_t len, bool sync)
{
    struct meta_batch *b = meta_batch_new();
    int rv = fsm_fill(m, b, buf, len);

    if (rv == SH_OK)
        rv = meta_batch_write(m, b, sync);
    meta_batch_free(b);
    return rv;
}

static uint64_t applied_read(struct meta *m)
{
    struct sh_buf key = SH_BUF_INIT;
    uint64_t index = 0;
    char *val;
    size_t vlen;

    meta_key_applied(&key);
    if (meta_get(m, key.data, key.len, &val, &vlen) == SH_OK) {
        if (vlen == 8) {
            for (int i = 7; i >= 0; i--)
                index = index << 8 | (unsigned char)val[i];
        }
        free(val);
    }
    sh_buf_release(&key);
    return index;
}

int fsm_apply_entry(struct meta *m, uint64_t index, const uint8_t *buf,
                    size_t len, uint64_t *applied)
{
    struct sh_buf key = SH_BUF_INIT;
    struct meta_batch *b;
    unsigned char idx[8];
    int rv, wrv;

    if (*applied == 0)
        *applied = applied_read(m);
    if (index <= *applied)
        return SH_OK; /* replayed after a restart: already in the state */
    b = meta_batch_new();
    rv = fsm_fill(m, b, buf, len);
    if (rv != SH_OK) {
        /* Refused: nothing of the command, but the index moves on. */
        meta_batch_free(b);
        b = meta_batch_new();
    }
    for (int i = 0; i < 8; i++)
        idx[i] = (unsigned char)(index >> (8 * i));
    meta_key_applied(&key);
    meta_batch_put(b, key.data, key.len, idx, sizeof idx);
    wrv = meta_batch_write(m, b, false);
    meta_batch_free(b);
    sh_buf_release(&key);
    if (wrv != SH_OK)
        return wrv;
    *applied = index;
    return rv;
}

/* x/ entries of one manifest record (key m/<repo>\0<digest>). */
static void index_manifest(struct meta_batch *b, const char *k, size_t klen,
                           const char *v, size_t vlen)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__ManifestRecord *rec;
    size_t rlen, dlen;
    const char *r = meta_key_repo_name(k, klen, &rlen);
    const char *d = meta_key_last(k, klen, &dlen);
    char *repo, *digest;

    rec = shoal__manifest_record__unpack(NULL, vlen, (const uint8_t *)v);
    if (rec == NULL || r == NULL || d == NULL) {
        if (rec != NULL)
            shoal__manifest_record__free_unpacked(rec, NULL);
        return;
    }
    repo = sh_strndup(r, rlen);
    digest = sh_strndup(d, dlen);
    for (size_t i = 0; i < rec->n_blob_refs; i++) {
        meta_key_blob_ref(&key, rec->blob_refs[i], repo, digest);
        meta_batch_put(b, key.data, key.len, "", 0);
    }
    free(repo);
    free(digest);
    shoal__manifest_record__free_unpacked(rec, NULL);
    sh_buf_release(&key);
}

int fsm_index_build(struct meta *m)
{
    struct sh_buf key = SH_BUF_INIT;
    bool done;

    meta_key_index_version(&key);
    done = meta_has(m, key.data, key.len);
    sh_buf_release(&key);
    return done ? SH_OK : fsm_index_fill(m);
}

int fsm_index_fill(struct meta *m)
{
    struct sh_buf key = SH_BUF_INIT;
    struct meta_batch *b;
    struct meta_iter *it;
    int rv;

    b = meta_batch_new();
    meta_key_index_version(&key);
    meta_batch_put(b, key.data, key.len, "1", 1);
    meta_key_manifest_all(&key);
    it = meta_iter_new(m, key.data, key.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        index_manifest(b, k, klen, v, vlen);
    }
    meta_iter_free(it);
    /* Links without a twin (from before link times, or restored from a
     * snapshot of a node that kept none): time 0, as old as can be.  A
     * twin that exists keeps its time. */
    meta_key_link_all(&key);
    it = meta_iter_new(m, key.data, key.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, rlen, dlen;
        const char *k = meta_iter_key(it, &klen);
        const char *r = meta_key_repo_name(k, klen, &rlen);
        const char *d = meta_key_last(k, klen, &dlen);
        char *repo, *digest;
        if (r == NULL || d == NULL)
            continue;
        repo = sh_strndup(r, rlen);
        digest = sh_strndup(d, dlen);
        meta_key_blob_repo(&key, digest, repo);
        if (!meta_has(m, key.data, key.len))
            meta_batch_put(b, key.data, key.len, "", 0);
        free(repo);
        free(digest);
    }
    meta_iter_free(it);
    rv = meta_batch_write(m, b, true);
    meta_batch_free(b);
    sh_buf_release(&key);
    return rv;
}
