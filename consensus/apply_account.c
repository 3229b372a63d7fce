/* Appliers of the account and signing-key commands.  Like apply.c they only
 * add to the caller's batch, after checking what they need, so a refused
 * command changes nothing.  Password hashes arrive already computed: the
 * state machine never sees a password. */
#include <stdlib.h>
#include <string.h>

#include "fsm.h"

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static void put_account(struct meta_batch *b, const struct sh_buf *key,
                        const Shoal__AccountRecord *rec)
{
    size_t vlen = shoal__account_record__get_packed_size(rec);
    uint8_t *val = sh_malloc(vlen);

    shoal__account_record__pack(rec, val);
    meta_batch_put(b, key->data, key->len, val, vlen);
    free(val);
}

int fsm__apply_account_put(struct meta *m, struct meta_batch *b,
                           const Shoal__AccountPut *op)
{
    struct sh_buf key = SH_BUF_INIT;
    const Shoal__AccountRecord *rec = op->record;
    int rv = SH_OK;

    if (rec == NULL || !nonempty(rec->name) ||
        !nonempty(rec->password_hash) ||
        (rec->kind != SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER &&
         rec->kind != SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN))
        return SH_EMALFORMED;
    meta_key_account(&key, rec->name);
    if (op->create_only && meta_has(m, key.data, key.len))
        rv = SH_EEXIST;
    else
        put_account(b, &key, rec);
    sh_buf_release(&key);
    return rv;
}

/* The stored record of account `name` (*cur, NULL unless SH_OK) and its
 * key, for a command that changes or removes it; account_release frees
 * both.  SH_EMALFORMED for an empty name, SH_ENOTFOUND for none. */
static int account_load(struct meta *m, const char *name, struct sh_buf *key,
                        Shoal__AccountRecord **cur)
{
    *cur = NULL;
    if (!nonempty(name))
        return SH_EMALFORMED;
    meta_key_account(key, name);
    return meta_account_get(m, name, cur);
}

static void account_release(struct sh_buf *key, Shoal__AccountRecord *cur)
{
    if (cur != NULL)
        shoal__account_record__free_unpacked(cur, NULL);
    sh_buf_release(key);
}

int fsm__apply_account_delete(struct meta *m, struct meta_batch *b,
                              const Shoal__AccountDelete *op)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__AccountRecord *cur;
    int rv = account_load(m, op->name, &key, &cur);

    if (rv == SH_OK && cur->kind != op->kind)
        rv = SH_ENOTFOUND;
    if (rv == SH_OK)
        meta_batch_del(b, key.data, key.len);
    account_release(&key, cur);
    return rv;
}

int fsm__apply_account_used(struct meta *m, struct meta_batch *b,
                            const Shoal__AccountUsed *op)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__AccountRecord *cur;
    int rv = account_load(m, op->name, &key, &cur);

    if (rv == SH_OK && cur->last_used_unix < op->at_unix) {
        cur->last_used_unix = op->at_unix;
        put_account(b, &key, cur);
    }
    account_release(&key, cur);
    return rv;
}

int fsm__apply_signing_key_put(struct meta *m, struct meta_batch *b,
                               const Shoal__SigningKeyPut *op)
{
    struct sh_buf key = SH_BUF_INIT;
    const Shoal__SigningKeyRecord *rec = op->record;
    size_t vlen;
    uint8_t *val;

    (void)m;
    if (rec == NULL || !nonempty(rec->kid) || !nonempty(rec->private_pem))
        return SH_EMALFORMED;
    for (size_t i = 0; i < op->n_retire; i++) {
        if (!nonempty(op->retire[i]) || strcmp(op->retire[i], rec->kid) == 0)
            return SH_EMALFORMED;
    }
    for (size_t i = 0; i < op->n_retire; i++) {
        meta_key_signing_key(&key, op->retire[i]);
        meta_batch_del(b, key.data, key.len);
    }
    meta_key_signing_key(&key, rec->kid);
    vlen = shoal__signing_key_record__get_packed_size(rec);
    val = sh_malloc(vlen);
    shoal__signing_key_record__pack(rec, val);
    meta_batch_put(b, key.data, key.len, val, vlen);
    free(val);
    sh_buf_release(&key);
    return SH_OK;
}
