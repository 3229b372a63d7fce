/* consensus/fsm.c and apply.c: encoded commands applied to a real meta
 * store.  Each test checks what a command writes, that a refused command
 * (absent target or malformed bytes) writes nothing at all (a full dump of
 * the database before and after), and reads state back only through
 * storage.h. */
#include "consensus/consensus.h"
#include "consensus/fsm.h"

#include "fixture.h"

#define REPO "library/app"
#define MANIFEST "{\"schemaVersion\":2}"
#define DESCRIPTOR \
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"

static int setup(void **state)
{
    struct fx_meta *f = sh_malloc(sizeof *f);

    fx_meta_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx_meta *f = *state;

    fx_meta_close(f);
    free(f);
    return 0;
}

/* Encode and apply one command. */
static int apply(struct meta *m, Shoal__Command *cmd, bool sync)
{
    size_t len;
    uint8_t *buf = sh_command_encode(cmd, &len);
    int rv = fsm_apply(m, buf, len, sync);

    free(buf);
    return rv;
}

static void apply_ok(struct meta *m, Shoal__Command *cmd)
{
    assert_int_equal(apply(m, cmd, true), SH_OK);
}

/* Apply raw bytes and check they are refused with `want` and that the
 * database is byte for byte what it was. */
static void assert_refused_bytes(struct meta *m,
                                 const uint8_t *buf,
                                 size_t len,
                                 int want)
{
    char *before = fx_dump(m);
    char *after;

    assert_int_equal(fsm_apply(m, buf, len, true), want);
    after = fx_dump(m);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void assert_refused(struct meta *m, Shoal__Command *cmd, int want)
{
    size_t len;
    uint8_t *buf = sh_command_encode(cmd, &len);

    assert_refused_bytes(m, buf, len, want);
    free(buf);
}

/* ---- state accessors, through storage.h only ---- */

static bool has_repo(struct meta *m, const char *repo)
{
    struct sh_buf k = SH_BUF_INIT;
    size_t vlen = 99;
    char *v;

    meta_key_repo(&k, repo);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    if (v == NULL)
        return false;
    assert_int_equal(vlen, 0); /* the repository record is empty */
    free(v);
    return true;
}

/* The digest a tag points at, or NULL. */
static char *tag_of(struct meta *m, const char *repo, const char *tag)
{
    struct sh_buf k = SH_BUF_INIT;
    size_t vlen;
    char *v;

    meta_key_tag(&k, repo, tag);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    if (v != NULL)
        assert_int_equal(strlen(v), vlen);
    return v;
}

static void assert_tag(struct meta *m,
                       const char *repo,
                       const char *tag,
                       const char *digest)
{
    char *v = tag_of(m, repo, tag);

    if (digest == NULL) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, digest);
    free(v);
}

/* The stored manifest record, or NULL. */
static Shoal__ManifestRecord *manifest_of(struct meta *m,
                                          const char *repo,
                                          const char *digest)
{
    struct sh_buf k = SH_BUF_INIT;
    Shoal__ManifestRecord *rec;
    size_t vlen;
    char *v;

    meta_key_manifest(&k, repo, digest);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    if (v == NULL)
        return NULL;
    rec = shoal__manifest_record__unpack(NULL, vlen, (const uint8_t *)v);
    free(v);
    assert_non_null(rec);
    return rec;
}

static bool has_manifest(struct meta *m, const char *repo, const char *digest)
{
    Shoal__ManifestRecord *rec = manifest_of(m, repo, digest);

    if (rec == NULL)
        return false;
    shoal__manifest_record__free_unpacked(rec, NULL);
    return true;
}

static Shoal__BlobRecord *blob_of(struct meta *m, const char *digest)
{
    struct sh_buf k = SH_BUF_INIT;
    Shoal__BlobRecord *rec;
    size_t vlen;
    char *v;

    meta_key_blob(&k, digest);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    if (v == NULL)
        return NULL;
    rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)v);
    free(v);
    assert_non_null(rec);
    return rec;
}

static bool has_link(struct meta *m, const char *repo, const char *digest)
{
    struct sh_buf k = SH_BUF_INIT;
    bool yes;

    meta_key_link(&k, repo, digest);
    yes = meta_has(m, k.data, k.len);
    sh_buf_release(&k);
    return yes;
}

/* The referrer descriptor of `digest` under `subject`, or NULL. */
static char *referrer_of(struct meta *m,
                         const char *repo,
                         const char *subject,
                         const char *digest,
                         size_t *vlen)
{
    struct sh_buf k = SH_BUF_INIT;
    char *v;

    meta_key_referrer(&k, repo, subject, digest);
    v = fx_get(m, &k, vlen);
    sh_buf_release(&k);
    return v;
}

/* Last components of every key under a prefix, joined by ','. */
static char *list(struct meta *m, const struct sh_buf *prefix)
{
    struct sh_buf out = SH_BUF_INIT;
    struct meta_iter *it = meta_iter_new(m, prefix->data, prefix->len, NULL, 0);

    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, n;
        const char *k = meta_iter_key(it, &klen);
        const char *last = meta_key_last(k, klen, &n);
        if (out.len)
            sh_buf_addch(&out, ',');
        sh_buf_add(&out, last, n);
    }
    meta_iter_free(it);
    return sh_buf_detach(&out, NULL);
}

static void assert_tags(struct meta *m, const char *repo, const char *want)
{
    struct sh_buf p = SH_BUF_INIT;
    char *got;

    meta_key_tag_prefix(&p, repo);
    got = list(m, &p);
    assert_string_equal(got, want);
    free(got);
    sh_buf_release(&p);
}

static void assert_referrers(struct meta *m,
                             const char *repo,
                             const char *subject,
                             const char *want)
{
    struct sh_buf p = SH_BUF_INIT;
    char *got;

    meta_key_referrer_prefix(&p, repo, subject);
    got = list(m, &p);
    assert_string_equal(got, want);
    free(got);
    sh_buf_release(&p);
}

/* ------------------------------------------------------------ manifests */

static void test_put_manifest(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__ManifestRecord *rec;

    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, NULL, NULL, NULL));
    assert_true(has_repo(f->m, REPO));
    rec = manifest_of(f->m, REPO, DIGEST_A);
    assert_non_null(rec);
    assert_int_equal(rec->version, SH_RECORD_VERSION);
    assert_string_equal(rec->media_type,
                        "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(rec->content.len, strlen(MANIFEST));
    assert_memory_equal(rec->content.data, MANIFEST, strlen(MANIFEST));
    assert_string_equal(rec->subject, "");
    assert_int_equal(rec->created_unix, 1700000000);
    shoal__manifest_record__free_unpacked(rec, NULL);
    assert_tags(f->m, REPO, "");
    /* Exactly the repository and the manifest. */
    assert_int_equal(fx_count_keys(f->m), 2);
    assert_false(has_repo(f->m, "library"));
    assert_false(has_manifest(f->m, "other", DIGEST_A));
}

static void test_put_manifest_tag(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "latest", NULL,
                                   NULL));
    assert_true(has_repo(f->m, REPO));
    assert_true(has_manifest(f->m, REPO, DIGEST_A));
    assert_tag(f->m, REPO, "latest", DIGEST_A);
    assert_int_equal(fx_count_keys(f->m), 3);

    /* A second manifest takes the tag over; the first stays. */
    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_B, "{}", "latest", NULL, NULL));
    assert_tag(f->m, REPO, "latest", DIGEST_B);
    assert_true(has_manifest(f->m, REPO, DIGEST_A));
    assert_true(has_manifest(f->m, REPO, DIGEST_B));
    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "v1", NULL, NULL));
    assert_tags(f->m, REPO, "latest,v1");
    assert_tag(f->m, REPO, "v1", DIGEST_A);
    assert_int_equal(fx_count_keys(f->m), 5);
}

static void test_put_manifest_subject(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__ManifestRecord *rec;
    size_t vlen;
    char *v;

    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_B, MANIFEST, NULL, DIGEST_S,
                                   DESCRIPTOR));
    v = referrer_of(f->m, REPO, DIGEST_S, DIGEST_B, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, strlen(DESCRIPTOR));
    assert_memory_equal(v, DESCRIPTOR, vlen);
    free(v);
    rec = manifest_of(f->m, REPO, DIGEST_B);
    assert_non_null(rec);
    assert_string_equal(rec->subject, DIGEST_S);
    shoal__manifest_record__free_unpacked(rec, NULL);
    assert_referrers(f->m, REPO, DIGEST_S, DIGEST_B);
    /* The subject itself need not exist; nothing else is written. */
    assert_false(has_manifest(f->m, REPO, DIGEST_S));
    assert_int_equal(fx_count_keys(f->m), 3);

    /* A second referrer of the same subject, with a tag. */
    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_C, "{}", "sig", DIGEST_S,
                                   "{\"d\":1}"));
    assert_referrers(f->m, REPO, DIGEST_S, DIGEST_B "," DIGEST_C);
    v = referrer_of(f->m, REPO, DIGEST_S, DIGEST_C, &vlen);
    assert_non_null(v);
    assert_string_equal(v, "{\"d\":1}");
    free(v);
    assert_referrers(f->m, "other", DIGEST_S, "");
}

/* A repository with two tags on A, one on B, A referring to S, plus the
 * same digest in a neighbouring repository: deleting A in REPO removes
 * its manifest, its two tags and its referrer entry, nothing else. */
static void test_delete_manifest(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    size_t vlen;
    char *v;

    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "latest",
                                   DIGEST_S, DESCRIPTOR));
    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "v1", DIGEST_S,
                                   DESCRIPTOR));
    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_B, "{}", "v2", DIGEST_S,
                                   "{\"b\":1}"));
    apply_ok(f->m, fx_put_manifest(&c, REPO "/sub", DIGEST_A, MANIFEST,
                                   "latest", DIGEST_S, DESCRIPTOR));
    apply_ok(f->m, fx_put_manifest(&c, "other", DIGEST_A, MANIFEST, "latest",
                                   NULL, NULL));
    apply_ok(f->m, fx_blob_commit(&c, REPO, DIGEST_C, 10));
    assert_tags(f->m, REPO, "latest,v1,v2");
    assert_referrers(f->m, REPO, DIGEST_S, DIGEST_A "," DIGEST_B);
    int before = fx_count_keys(f->m);

    apply_ok(f->m, fx_delete_manifest(&c, REPO, DIGEST_A));
    assert_false(has_manifest(f->m, REPO, DIGEST_A));
    assert_tags(f->m, REPO, "v2");
    assert_tag(f->m, REPO, "v2", DIGEST_B);
    assert_referrers(f->m, REPO, DIGEST_S, DIGEST_B);
    v = referrer_of(f->m, REPO, DIGEST_S, DIGEST_A, &vlen);
    assert_null(v);
    assert_int_equal(fx_count_keys(f->m), before - 4);

    /* Untouched: the repository, B, the blob, and the other repositories
     * holding the same digest. */
    assert_true(has_repo(f->m, REPO));
    assert_true(has_manifest(f->m, REPO, DIGEST_B));
    assert_true(has_link(f->m, REPO, DIGEST_C));
    assert_true(has_manifest(f->m, REPO "/sub", DIGEST_A));
    assert_tag(f->m, REPO "/sub", "latest", DIGEST_A);
    assert_referrers(f->m, REPO "/sub", DIGEST_S, DIGEST_A);
    assert_true(has_manifest(f->m, "other", DIGEST_A));
    assert_tag(f->m, "other", "latest", DIGEST_A);

    /* Deleting it again finds nothing and changes nothing. */
    assert_refused(f->m, fx_delete_manifest(&c, REPO, DIGEST_A), SH_ENOTFOUND);
}

static void test_delete_manifest_without_subject(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "t", NULL, NULL));
    apply_ok(f->m, fx_delete_manifest(&c, REPO, DIGEST_A));
    assert_false(has_manifest(f->m, REPO, DIGEST_A));
    assert_tags(f->m, REPO, "");
    assert_int_equal(fx_count_keys(f->m), 1); /* the repository stays */
    assert_true(has_repo(f->m, REPO));
}

static void test_delete_tag(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "a", NULL, NULL));
    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "b", NULL, NULL));
    apply_ok(f->m,
             fx_put_manifest(&c, "other", DIGEST_A, MANIFEST, "a", NULL, NULL));
    apply_ok(f->m, fx_delete_tag(&c, REPO, "a"));
    assert_tags(f->m, REPO, "b");
    assert_tags(f->m, "other", "a");
    assert_true(has_manifest(f->m, REPO, DIGEST_A));
}

/* Deletes of something absent: SH_ENOTFOUND, and not one byte changes,
 * even when the same name exists nearby. */
static void test_delete_absent(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    /* On an empty database. */
    assert_refused(f->m, fx_delete_manifest(&c, REPO, DIGEST_A), SH_ENOTFOUND);
    assert_refused(f->m, fx_delete_tag(&c, REPO, "latest"), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_unlink(&c, REPO, DIGEST_A), SH_ENOTFOUND);
    assert_int_equal(fx_count_keys(f->m), 0);

    /* Near misses. */
    apply_ok(f->m, fx_put_manifest(&c, "other", DIGEST_A, MANIFEST, "latest",
                                   DIGEST_S, DESCRIPTOR));
    apply_ok(f->m,
             fx_put_manifest(&c, REPO, DIGEST_B, MANIFEST, "v1", NULL, NULL));
    apply_ok(f->m, fx_blob_commit(&c, "other", DIGEST_C, 7));
    assert_refused(f->m, fx_delete_manifest(&c, REPO, DIGEST_A), SH_ENOTFOUND);
    assert_refused(f->m, fx_delete_manifest(&c, REPO "/x", DIGEST_B),
                   SH_ENOTFOUND);
    assert_refused(f->m, fx_delete_tag(&c, REPO, "latest"), SH_ENOTFOUND);
    assert_refused(f->m, fx_delete_tag(&c, REPO, "v"), SH_ENOTFOUND);
    assert_refused(f->m, fx_delete_tag(&c, "other", "v1"), SH_ENOTFOUND);
    /* The blob exists but is not linked into REPO. */
    assert_refused(f->m, fx_blob_unlink(&c, REPO, DIGEST_C), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_unlink(&c, "other", DIGEST_A), SH_ENOTFOUND);
}

/* ---------------------------------------------------------------- blobs */

static void test_blob_commit(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__BlobRecord *rec;
    char *before, *after;

    apply_ok(f->m, fx_blob_commit(&c, REPO, DIGEST_A, 1234));
    rec = blob_of(f->m, DIGEST_A);
    assert_non_null(rec);
    assert_int_equal(rec->version, SH_RECORD_VERSION);
    assert_string_equal(rec->digest, DIGEST_A);
    assert_int_equal(rec->size, 1234);
    assert_non_null(rec->layout);
    assert_int_equal(rec->layout->k, 1);
    assert_int_equal(rec->state, SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE);
    shoal__blob_record__free_unpacked(rec, NULL);
    assert_true(has_link(f->m, REPO, DIGEST_A));
    assert_true(has_repo(f->m, REPO));
    assert_int_equal(fx_count_keys(f->m), 4); /* r b l y */

    /* Committed again with another size into another repository: the
     * first record stays, the new repository gets its link. */
    apply_ok(f->m, fx_blob_commit(&c, "second", DIGEST_A, 99));
    rec = blob_of(f->m, DIGEST_A);
    assert_non_null(rec);
    assert_int_equal(rec->size, 1234);
    shoal__blob_record__free_unpacked(rec, NULL);
    assert_true(has_link(f->m, "second", DIGEST_A));
    assert_true(has_repo(f->m, "second"));
    assert_true(has_link(f->m, REPO, DIGEST_A));
    assert_int_equal(fx_count_keys(f->m), 7);

    /* Committed again into the same repository: nothing changes. */
    before = fx_dump(f->m);
    apply_ok(f->m, fx_blob_commit(&c, REPO, DIGEST_A, 5));
    after = fx_dump(f->m);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_blob_link(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    /* Unknown blob. */
    assert_refused(f->m, fx_blob_link(&c, REPO, DIGEST_A), SH_ENOTFOUND);
    assert_int_equal(fx_count_keys(f->m), 0);
    apply_ok(f->m, fx_blob_commit(&c, "src", DIGEST_A, 10));
    assert_refused(f->m, fx_blob_link(&c, REPO, DIGEST_B), SH_ENOTFOUND);

    /* Known blob: linked, and the repository comes into being. */
    assert_false(has_repo(f->m, REPO));
    apply_ok(f->m, fx_blob_link(&c, REPO, DIGEST_A));
    assert_true(has_link(f->m, REPO, DIGEST_A));
    assert_true(has_repo(f->m, REPO));
    assert_true(has_link(f->m, "src", DIGEST_A));
    assert_int_equal(fx_count_keys(f->m), 7);
}

/* Commit blob `digest` (10 bytes) with layout k + m, shard i on node
 * i + 1 for the first n shards. */
static void commit_placed(struct fx_meta *f, struct fx_cmd *c,
                          const char *digest, unsigned k, unsigned m,
                          unsigned n)
{
    fx_blob_commit(c, REPO, digest, 10);
    c->layout.k = k;
    c->layout.m = m;
    for (unsigned i = 0; i < n; i++) {
        shoal__shard_placement__init(&c->place[i]);
        c->place[i].index = i;
        c->place[i].node_id = i + 1;
        c->places[i] = &c->place[i];
    }
    c->blob.n_placement = n;
    c->blob.placement = c->places;
    apply_ok(f->m, &c->cmd);
}

static void test_blob_place(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__BlobRecord *rec;
    char *before, *after;

    commit_placed(f, &c, DIGEST_A, 2, 1, 3);

    /* Shard 1 moves from node 2 to node 5; the others stay. */
    apply_ok(f->m, fx_blob_place(&c, DIGEST_A, 1, 2, 5));
    rec = blob_of(f->m, DIGEST_A);
    assert_non_null(rec);
    assert_int_equal(rec->n_placement, 3);
    assert_int_equal(rec->placement[0]->node_id, 1);
    assert_int_equal(rec->placement[1]->index, 1);
    assert_int_equal(rec->placement[1]->node_id, 5);
    assert_int_equal(rec->placement[2]->node_id, 3);
    assert_int_equal(rec->size, 10);
    assert_int_equal(rec->layout->k, 2);
    shoal__blob_record__free_unpacked(rec, NULL);

    /* Not (or no longer) on that node, unknown blob: nothing changes. */
    before = fx_dump(f->m);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_A, 1, 2, 6), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_A, 7, 1, 6), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_B, 0, 1, 6), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_A, 0, 1, 0), SH_EMALFORMED);
    assert_refused(f->m, fx_blob_place(&c, "", 0, 1, 6), SH_EMALFORMED);
    after = fx_dump(f->m);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

/* from_node 0: a blob of copies gains its next copy, nothing else does. */
static void test_blob_place_copy_add(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__BlobRecord *rec;
    char *before, *after;

    /* B: one copy (k = 1, m = 0) on node 1; A: 2 + 1 on nodes 1..3. */
    commit_placed(f, &c, DIGEST_B, 1, 0, 1);
    commit_placed(f, &c, DIGEST_A, 2, 1, 3);

    apply_ok(f->m, fx_blob_place(&c, DIGEST_B, 1, 0, 4));
    rec = blob_of(f->m, DIGEST_B);
    assert_non_null(rec);
    assert_int_equal(rec->layout->k, 1);
    assert_int_equal(rec->layout->m, 1);
    assert_int_equal(rec->n_placement, 2);
    assert_int_equal(rec->placement[0]->node_id, 1);
    assert_int_equal(rec->placement[1]->index, 1);
    assert_int_equal(rec->placement[1]->node_id, 4);
    assert_int_equal(rec->size, 10);
    shoal__blob_record__free_unpacked(rec, NULL);

    /* Not the next copy, a node holding one already, erasure coding, an
     * unknown blob: nothing changes. */
    before = fx_dump(f->m);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_B, 1, 0, 5), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_B, 3, 0, 5), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_B, 2, 0, 4), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_B, 2, 0, 1), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_A, 2, 0, 5), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, DIGEST_A, 3, 0, 5), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_place(&c, "sha256:00", 1, 0, 5),
                   SH_ENOTFOUND);
    after = fx_dump(f->m);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

/* ---- accounts and signing keys ---- */

static Shoal__Command *account_put(Shoal__Command *cmd, Shoal__AccountPut *op,
                                   Shoal__AccountRecord *rec, const char *name,
                                   int kind, bool create_only)
{
    static char *scopes[] = {"repository:team/*:pull"};

    shoal__command__init(cmd);
    shoal__account_put__init(op);
    shoal__account_record__init(rec);
    rec->version = 1;
    rec->name = (char *)name;
    rec->kind = kind;
    rec->password_hash = "$y$j9T$salt$hash";
    rec->scopes = scopes;
    rec->n_scopes = 1;
    op->record = rec;
    op->create_only = create_only;
    cmd->op_case = SHOAL__COMMAND__OP_ACCOUNT_PUT;
    cmd->account_put = op;
    return cmd;
}

static Shoal__AccountRecord *account_of(struct meta *m, const char *name)
{
    struct sh_buf k = SH_BUF_INIT;
    Shoal__AccountRecord *rec = NULL;
    size_t vlen;
    char *v;

    meta_key_account(&k, name);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    if (v != NULL) {
        rec = shoal__account_record__unpack(NULL, vlen, (uint8_t *)v);
        free(v);
    }
    return rec;
}

#define USER SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER
#define TOKEN SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN

static void test_account_put_delete(void **state)
{
    struct fx_meta *f = *state;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__AccountPut put;
    Shoal__AccountRecord rec;
    Shoal__AccountDelete del = SHOAL__ACCOUNT_DELETE__INIT;
    Shoal__AccountUsed used = SHOAL__ACCOUNT_USED__INIT;
    Shoal__AccountRecord *got;

    apply_ok(f->m, account_put(&cmd, &put, &rec, "alice", USER, true));
    got = account_of(f->m, "alice");
    assert_non_null(got);
    assert_int_equal(got->kind, USER);
    assert_string_equal(got->scopes[0], "repository:team/*:pull");
    shoal__account_record__free_unpacked(got, NULL);
    /* The name is taken: create_only refuses, a plain put replaces. */
    assert_refused(f->m, account_put(&cmd, &put, &rec, "alice", TOKEN, true),
                   SH_EEXIST);
    /* Malformed: no name, no hash, no kind. */
    account_put(&cmd, &put, &rec, "", USER, false);
    assert_refused(f->m, &cmd, SH_EMALFORMED);
    account_put(&cmd, &put, &rec, "bob", USER, false);
    rec.password_hash = "";
    assert_refused(f->m, &cmd, SH_EMALFORMED);
    account_put(&cmd, &put, &rec, "bob", 0, false);
    assert_refused(f->m, &cmd, SH_EMALFORMED);

    /* Last use only moves forward. */
    used.name = "alice";
    used.at_unix = 50;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_USED;
    cmd.account_used = &used;
    apply_ok(f->m, &cmd);
    used.at_unix = 40;
    apply_ok(f->m, &cmd);
    got = account_of(f->m, "alice");
    assert_int_equal(got->last_used_unix, 50);
    shoal__account_record__free_unpacked(got, NULL);
    used.name = "nobody";
    assert_refused(f->m, &cmd, SH_ENOTFOUND);

    /* Delete checks the kind: a user is not deleted as a token. */
    del.name = "alice";
    del.kind = TOKEN;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_DELETE;
    cmd.account_delete = &del;
    assert_refused(f->m, &cmd, SH_ENOTFOUND);
    del.kind = USER;
    apply_ok(f->m, &cmd);
    assert_null(account_of(f->m, "alice"));
    assert_refused(f->m, &cmd, SH_ENOTFOUND);
    assert_int_equal(fx_count_keys(f->m), 0);
}

static void test_signing_key_put(void **state)
{
    struct fx_meta *f = *state;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__SigningKeyPut put = SHOAL__SIGNING_KEY_PUT__INIT;
    Shoal__SigningKeyRecord rec = SHOAL__SIGNING_KEY_RECORD__INIT;
    char *retire[] = {"k1"};
    struct sh_buf k = SH_BUF_INIT;
    size_t vlen;
    char *v;

    rec.version = 1;
    rec.kid = "k1";
    rec.private_pem = "pem1";
    put.record = &rec;
    cmd.op_case = SHOAL__COMMAND__OP_SIGNING_KEY_PUT;
    cmd.signing_key_put = &put;
    apply_ok(f->m, &cmd);
    rec.kid = "k2";
    rec.private_pem = "pem2";
    apply_ok(f->m, &cmd);
    assert_int_equal(fx_count_keys(f->m), 2);
    /* Rotation: k3 in, k1 out, k2 stays. */
    rec.kid = "k3";
    rec.private_pem = "pem3";
    put.retire = retire;
    put.n_retire = 1;
    apply_ok(f->m, &cmd);
    assert_int_equal(fx_count_keys(f->m), 2);
    meta_key_signing_key(&k, "k1");
    assert_null(fx_get(f->m, &k, &vlen));
    meta_key_signing_key(&k, "k3");
    v = fx_get(f->m, &k, &vlen);
    assert_non_null(v);
    free(v);
    sh_buf_release(&k);
    /* Retiring the key being put, or no PEM: refused whole. */
    retire[0] = "k3";
    rec.kid = "k3";
    assert_refused(f->m, &cmd, SH_EMALFORMED);
    retire[0] = "k2";
    rec.kid = "k4";
    rec.private_pem = "";
    assert_refused(f->m, &cmd, SH_EMALFORMED);
}

static void test_blob_unlink(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    Shoal__BlobRecord *rec;

    apply_ok(f->m, fx_blob_commit(&c, REPO, DIGEST_A, 10));
    apply_ok(f->m, fx_blob_link(&c, "other", DIGEST_A));
    apply_ok(f->m, fx_blob_unlink(&c, REPO, DIGEST_A));
    assert_false(has_link(f->m, REPO, DIGEST_A));
    assert_true(has_link(f->m, "other", DIGEST_A));
    /* The blob record and the repository stay (gc removes blobs). */
    rec = blob_of(f->m, DIGEST_A);
    assert_non_null(rec);
    shoal__blob_record__free_unpacked(rec, NULL);
    assert_true(has_repo(f->m, REPO));
    assert_refused(f->m, fx_blob_unlink(&c, REPO, DIGEST_A), SH_ENOTFOUND);
}

/* ------------------------------------------------------------ malformed */

static uint8_t *pack_version(Shoal__Command *cmd, uint32_t version, size_t *len)
{
    uint8_t *buf;

    cmd->version = version;
    *len = shoal__command__get_packed_size(cmd);
    buf = sh_malloc(*len);
    shoal__command__pack(cmd, buf);
    return buf;
}

/* Every kind of malformed command, refused with SH_EMALFORMED and without
 * a byte written. */
static void refuse_all_malformed(struct meta *m)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t future_op[] = {0x08, 0x01, 0x82, 0x01, 0x00};
    struct fx_cmd c;
    uint8_t *buf;
    size_t len;

    assert_refused_bytes(m, garbage, sizeof garbage, SH_EMALFORMED);
    assert_refused_bytes(m, future_op, sizeof future_op, SH_EMALFORMED);
    assert_refused_bytes(m, (const uint8_t *)"", 0, SH_EMALFORMED);
    assert_refused_bytes(m, (const uint8_t *)"hello", 5, SH_EMALFORMED);

    /* A valid PutManifest under another version, and truncated. */
    fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "latest", NULL, NULL);
    buf = pack_version(&c.cmd, SH_COMMAND_VERSION + 1, &len);
    assert_refused_bytes(m, buf, len, SH_EMALFORMED);
    free(buf);
    buf = pack_version(&c.cmd, 0, &len);
    assert_refused_bytes(m, buf, len, SH_EMALFORMED);
    free(buf);
    buf = sh_command_encode(&c.cmd, &len);
    assert_refused_bytes(m, buf, len - 1, SH_EMALFORMED);
    free(buf);

    /* No op. */
    fx_cmd_reset(&c);
    assert_refused(m, &c.cmd, SH_EMALFORMED);

    /* Well-formed envelopes missing what the op needs. */
    assert_refused(m,
                   fx_put_manifest(&c, "", DIGEST_A, MANIFEST, "t", NULL, NULL),
                   SH_EMALFORMED);
    assert_refused(m, fx_put_manifest(&c, REPO, "", MANIFEST, "t", NULL, NULL),
                   SH_EMALFORMED);
    fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "t", NULL, NULL);
    c.put_manifest.record = NULL;
    assert_refused(m, &c.cmd, SH_EMALFORMED);
    assert_refused(m, fx_delete_manifest(&c, REPO, ""), SH_EMALFORMED);
    assert_refused(m, fx_delete_manifest(&c, "", DIGEST_A), SH_EMALFORMED);
    assert_refused(m, fx_delete_tag(&c, REPO, ""), SH_EMALFORMED);
    assert_refused(m, fx_delete_tag(&c, "", "latest"), SH_EMALFORMED);
    assert_refused(m, fx_blob_commit(&c, "", DIGEST_A, 1), SH_EMALFORMED);
    assert_refused(m, fx_blob_commit(&c, REPO, "", 1), SH_EMALFORMED);
    fx_blob_commit(&c, REPO, DIGEST_A, 1);
    c.blob_commit.record = NULL;
    assert_refused(m, &c.cmd, SH_EMALFORMED);
    assert_refused(m, fx_blob_link(&c, "", DIGEST_A), SH_EMALFORMED);
    assert_refused(m, fx_blob_link(&c, REPO, ""), SH_EMALFORMED);
    assert_refused(m, fx_blob_unlink(&c, "", DIGEST_A), SH_EMALFORMED);
    assert_refused(m, fx_blob_unlink(&c, REPO, ""), SH_EMALFORMED);
}

/* Whether the blob-first link twin of (repo, digest) exists; its link
 * time in *at. */
static bool link_twin(struct meta *m, const char *digest, const char *repo,
                      uint64_t *at)
{
    struct sh_buf k = SH_BUF_INIT;
    size_t vlen = 0;
    char *v;

    meta_key_blob_repo(&k, digest, repo);
    v = fx_get(m, &k, &vlen);
    sh_buf_release(&k);
    *at = v != NULL ? fsm__link_time(v, vlen) : 0;
    free(v);
    return v != NULL;
}

/* Commit `digest` (10 bytes) into `repo`, its record created at `at`. */
static void commit_at(struct meta *m, const char *repo, const char *digest,
                      uint64_t at)
{
    struct fx_cmd c;

    fx_blob_commit(&c, repo, digest, 10);
    c.blob.created_unix = at;
    apply_ok(m, &c.cmd);
}

/* PutManifest of DIGEST_C into `repo` referencing blobs A and B. */
static Shoal__Command *put_refs(struct fx_cmd *c, const char *repo)
{
    static char *refs[2] = {(char *)DIGEST_A, (char *)DIGEST_B};

    fx_put_manifest(c, repo, DIGEST_C, MANIFEST, "t", NULL, NULL);
    c->manifest.blob_refs = refs;
    c->manifest.n_blob_refs = 2;
    return &c->cmd;
}

/* GC: the reference and link indexes the FSM keeps, and BlobDrop, which
 * they decide. */
static void test_blob_drop(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;
    uint64_t at;

    commit_at(f->m, REPO, DIGEST_A, 100);
    commit_at(f->m, REPO, DIGEST_B, 100);
    assert_true(link_twin(f->m, DIGEST_A, REPO, &at));
    assert_int_equal(at, 100);
    fx_blob_link(&c, "other", DIGEST_A);
    c.blob_link.at_unix = 200;
    apply_ok(f->m, &c.cmd);
    assert_true(link_twin(f->m, DIGEST_A, "other", &at));
    assert_int_equal(at, 200);

    /* A manifest whose blobs are not all linked into its repository is
     * refused (B is not in "other"). */
    assert_refused(f->m, put_refs(&c, "other"), SH_ENOTFOUND);
    apply_ok(f->m, put_refs(&c, REPO));

    /* Referenced: kept, whatever the time. */
    assert_refused(f->m, fx_blob_drop(&c, DIGEST_A, 1000), SH_EBUSY);
    assert_refused(f->m, fx_blob_drop(&c, DIGEST_B, 1000), SH_EBUSY);
    assert_refused(f->m, fx_blob_drop(&c, DIGEST_S, 1000), SH_ENOTFOUND);
    assert_refused(f->m, fx_blob_drop(&c, "", 1000), SH_EMALFORMED);
    assert_int_equal(cons_blob_droppable(f->m, DIGEST_A, 1000), SH_EBUSY);

    /* The manifest goes, and its references with it. */
    apply_ok(f->m, fx_delete_manifest(&c, REPO, DIGEST_C));
    assert_int_equal(cons_blob_droppable(f->m, DIGEST_A, 200), SH_OK);
    /* Linked after `before` (A into "other" at 200), created after it
     * (B at 100): kept. */
    assert_refused(f->m, fx_blob_drop(&c, DIGEST_A, 199), SH_EBUSY);
    assert_refused(f->m, fx_blob_drop(&c, DIGEST_B, 99), SH_EBUSY);

    /* Dropped: the record, both links and their twins; B untouched. */
    apply_ok(f->m, fx_blob_drop(&c, DIGEST_A, 200));
    assert_null(blob_of(f->m, DIGEST_A));
    assert_false(has_link(f->m, REPO, DIGEST_A));
    assert_false(has_link(f->m, "other", DIGEST_A));
    assert_false(link_twin(f->m, DIGEST_A, REPO, &at));
    assert_false(link_twin(f->m, DIGEST_A, "other", &at));
    assert_true(has_link(f->m, REPO, DIGEST_B));

    /* A manifest proposed before the drop and applied after it is
     * refused: the log order decides GC's race with a push. */
    assert_refused(f->m, put_refs(&c, REPO), SH_ENOTFOUND);

    /* An unlink takes the twin with it; B then goes too. */
    apply_ok(f->m, fx_blob_unlink(&c, REPO, DIGEST_B));
    assert_false(link_twin(f->m, DIGEST_B, REPO, &at));
    apply_ok(f->m, fx_blob_drop(&c, DIGEST_B, 100));
    assert_null(blob_of(f->m, DIGEST_B));
    assert_int_equal(fx_count_keys(f->m), 2); /* r/REPO r/other */
}

/* A state written before the indexes were kept gets them once. */
static void test_index_build(void **state)
{
    struct fx_meta *f = *state;
    struct meta_batch *b = meta_batch_new();
    struct meta_iter *it;
    struct fx_cmd c;
    char *with, *without, *again;
    uint64_t at = 1;

    commit_at(f->m, REPO, DIGEST_A, 100);
    commit_at(f->m, REPO, DIGEST_B, 100);
    apply_ok(f->m, put_refs(&c, REPO));
    with = fx_dump(f->m);
    for (it = meta_iter_new(f->m, "", 0, NULL, 0); meta_iter_valid(it);
         meta_iter_next(it)) {
        size_t klen;
        const char *k = meta_iter_key(it, &klen);
        if (k[0] == 'x' || k[0] == 'y')
            meta_batch_del(b, k, klen);
    }
    meta_iter_free(it);
    assert_int_equal(meta_batch_write(f->m, b, true), SH_OK);
    meta_batch_free(b);
    without = fx_dump(f->m);
    assert_string_not_equal(with, without);
    assert_int_equal(cons_blob_droppable(f->m, DIGEST_A, 1000), SH_OK);

    assert_int_equal(fsm_index_build(f->m), SH_OK);
    assert_int_equal(cons_blob_droppable(f->m, DIGEST_A, 1000), SH_EBUSY);
    assert_true(link_twin(f->m, DIGEST_B, REPO, &at));
    assert_int_equal(at, 0); /* linked before times were kept */
    /* Built once: a second start changes nothing. */
    again = fx_dump(f->m);
    assert_int_equal(fsm_index_build(f->m), SH_OK);
    free(without);
    without = fx_dump(f->m);
    assert_string_equal(again, without);

    /* Filled again (after a snapshot restore): what is there stays,
     * link times included, and what is missing comes back. */
    {
        struct fx_cmd c2;
        struct sh_buf k = SH_BUF_INIT;
        struct meta_batch *d = meta_batch_new();
        fx_blob_link(&c2, "other", DIGEST_A);
        c2.blob_link.at_unix = 300;
        apply_ok(f->m, &c2.cmd);
        meta_key_blob_ref(&k, DIGEST_A, REPO, DIGEST_C);
        meta_batch_del(d, k.data, k.len);
        assert_int_equal(meta_batch_write(f->m, d, true), SH_OK);
        meta_batch_free(d);
        sh_buf_release(&k);
        assert_int_equal(fsm_index_fill(f->m), SH_OK);
        assert_true(link_twin(f->m, DIGEST_A, "other", &at));
        assert_int_equal(at, 300);
        assert_int_equal(cons_blob_droppable(f->m, DIGEST_A, 1000), SH_EBUSY);
    }
    free(with);
    free(without);
    free(again);
}

static void test_malformed_empty_db(void **state)
{
    struct fx_meta *f = *state;

    refuse_all_malformed(f->m);
    assert_int_equal(fx_count_keys(f->m), 0);
}

static void test_malformed_populated_db(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    apply_ok(f->m, fx_put_manifest(&c, REPO, DIGEST_A, MANIFEST, "latest",
                                   DIGEST_S, DESCRIPTOR));
    apply_ok(f->m, fx_blob_commit(&c, REPO, DIGEST_B, 10));
    assert_int_equal(fx_count_keys(f->m), 7);
    {
        /* The dump really sees the state it compares. */
        char *dump = fx_dump(f->m);
        assert_non_null(strstr(dump, "r/" REPO "=\n"));
        assert_non_null(strstr(dump, "t/" REPO "\\00latest=" DIGEST_A "\n"));
        free(dump);
    }
    refuse_all_malformed(f->m);
    /* Blob present but the link refused as malformed: no link appears. */
    assert_refused(f->m, fx_blob_link(&c, "", DIGEST_B), SH_EMALFORMED);
    assert_int_equal(fx_count_keys(f->m), 7);
}

/* Unsynced applies are just as visible to the next read. */
static void test_apply_unsynced(void **state)
{
    struct fx_meta *f = *state;
    struct fx_cmd c;

    assert_int_equal(apply(f->m, fx_blob_commit(&c, REPO, DIGEST_A, 1), false),
                     SH_OK);
    assert_int_equal(apply(f->m, fx_blob_link(&c, "b", DIGEST_A), false),
                     SH_OK);
    assert_true(has_link(f->m, "b", DIGEST_A));
    assert_int_equal(apply(f->m, fx_blob_link(&c, "b", DIGEST_B), false),
                     SH_ENOTFOUND);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_manifest),
        T(test_blob_drop),
        T(test_index_build),
        T(test_put_manifest_tag),
        T(test_put_manifest_subject),
        T(test_delete_manifest),
        T(test_delete_manifest_without_subject),
        T(test_delete_tag),
        T(test_delete_absent),
        T(test_blob_commit),
        T(test_blob_place),
        T(test_blob_place_copy_add),
        T(test_blob_link),
        T(test_blob_unlink),
        T(test_account_put_delete),
        T(test_signing_key_put),
        T(test_malformed_empty_db),
        T(test_malformed_populated_db),
        T(test_apply_unsynced),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
