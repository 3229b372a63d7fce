/* Manifests: GET/HEAD/PUT/DELETE by tag or digest.
 *
 * PUT happy path: the body streams into a buffer capped at 4 MiB -> parse
 * and validate (oci_manifest_parse) -> digest of the exact bytes (and the
 * URL digest must match) -> every referenced blob is linked into the
 * repository and every child manifest exists -> PutManifest proposed ->
 * 201 once applied.  Nothing is written before the proposal, so a refused
 * manifest changes nothing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "oci.h"

struct put_state {
    char *name;          /* repository */
    char *ref;           /* tag or digest from the URL */
    bool ref_is_digest;
    struct sh_buf body;  /* capped at OCI_MANIFEST_MAX */
    bool too_big;
};

static void put_state_free(struct put_state *st)
{
    if (st == NULL)
        return;
    free(st->name);
    free(st->ref);
    sh_buf_release(&st->body);
    free(st);
}

/* Resolve a reference to a digest: tags through the tag index.  Returns
 * malloc'ed digest, or NULL when it answered.  (The router ran the read
 * index before this read, so "unknown" here is the cluster's answer.) */
static char *resolve(struct api_req *req, const char *name, const char *ref)
{
    enum digest_algo algo;
    struct sh_buf key = SH_BUF_INIT;
    char *val;
    size_t vlen;
    int rv;

    if (strchr(ref, ':') != NULL) {
        if (digest_parse(ref, strlen(ref), &algo) != SH_OK) {
            api_resp_error(req, "DIGEST_INVALID", "invalid digest");
            return NULL;
        }
        return sh_strdup(ref);
    }
    if (!oci_tag_valid(ref, strlen(ref))) {
        api_resp_error(req, "MANIFEST_INVALID", "invalid tag");
        return NULL;
    }
    meta_key_tag(&key, name, ref);
    rv = meta_get(req->srv->meta, key.data, key.len, &val, &vlen);
    sh_buf_release(&key);
    if (rv == SH_ENOTFOUND) {
        api_resp_error(req, "MANIFEST_UNKNOWN", ref);
        return NULL;
    }
    if (rv != SH_OK) {
        h_fail(req, rv, "unable to read tag");
        return NULL;
    }
    {
        char *digest = sh_strndup(val, vlen);
        free(val);
        return digest;
    }
}

static void get_manifest(struct api_req *req, const char *name, const char *ref)
{
    Shoal__ManifestRecord *rec;
    char *digest;
    int rv;

    digest = resolve(req, name, ref);
    if (digest == NULL)
        return;
    rv = h_manifest_record(req, name, digest, &rec);
    if (rv == SH_ENOTFOUND) {
        api_resp_error(req, "MANIFEST_UNKNOWN", ref);
    } else if (rv != SH_OK) {
        h_fail(req, rv, "unable to read manifest");
    } else {
        api_resp_header(req, "Docker-Content-Digest", "%s", digest);
        api_resp_header(req, "ETag", "\"%s\"", digest);
        api_resp_send(req, 200, rec->media_type, rec->content.data,
                      rec->content.len);
        shoal__manifest_record__free_unpacked(rec, NULL);
    }
    free(digest);
}

/* ---------------------------------------------------------------- PUT */

struct put_done {
    char *location;
    char *digest;
    char *subject;
    char *repo;
    char *tag;                  /* NULL: pushed by digest */
    char *media_type;
    uint64_t size;
};

static void put_applied(struct api_req *req, int status, void *arg)
{
    struct put_done *d = arg;
    if (status == SH_ENOTFOUND) {
        /* Refused when applied: a referenced blob was unlinked or
         * collected after the check below (consensus/apply.c). */
        api_resp_error(req, "MANIFEST_BLOB_UNKNOWN",
                       "a referenced blob is no longer in the repository");
    } else if (status != SH_OK) {
        h_fail(req, status, "unable to store manifest");
    } else {
        api_resp_header(req, "Location", "%s", d->location);
        api_resp_header(req, "Docker-Content-Digest", "%s", d->digest);
        if (d->subject)
            api_resp_header(req, "OCI-Subject", "%s", d->subject);
        /* Before the answer, which may end the request. */
        h_event(req, "push", d->repo, d->digest, d->tag, d->media_type,
                d->size);
        api_resp_send(req, 201, NULL, NULL, 0);
    }
    free(d->location);
    free(d->digest);
    free(d->subject);
    free(d->repo);
    free(d->tag);
    free(d->media_type);
    free(d);
}

/* The first reference that is not in the repository, or NULL. */
static const char *missing_ref(struct api_req *req, const char *name,
                               const struct oci_manifest *m)
{
    if (m->kind == OCI_KIND_IMAGE) {
        if (!h_blob_linked(req, name, m->config.digest))
            return m->config.digest;
        for (size_t i = 0; i < m->n_layers; i++) {
            if (m->layers[i].has_urls)
                continue; /* non-distributable: lives elsewhere */
            if (!h_blob_linked(req, name, m->layers[i].digest))
                return m->layers[i].digest;
        }
    } else {
        for (size_t i = 0; i < m->n_manifests; i++) {
            struct sh_buf key = SH_BUF_INIT;
            bool has;
            meta_key_manifest(&key, name, m->manifests[i].digest);
            has = meta_has(req->srv->meta, key.data, key.len);
            sh_buf_release(&key);
            if (!has)
                return m->manifests[i].digest;
        }
    }
    return NULL;
}

static void put_finish(struct api_req *req);

static void put_state_drop(void *arg)
{
    put_state_free(arg);
}

static void put_again(struct api_req *req, void *arg)
{
    req->hdata = arg;
    put_finish(req);
}

static void put_finish(struct api_req *req)
{
    struct put_state *st = req->hdata;
    struct oci_manifest m;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char digest[DIGEST_MAX_STR];
    enum digest_algo algo = DIGEST_SHA256;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__PutManifest op = SHOAL__PUT_MANIFEST__INIT;
    Shoal__ManifestRecord rec = SHOAL__MANIFEST_RECORD__INIT;
    char **blob_refs = NULL, **man_refs = NULL;
    char *desc;
    struct put_done *done;
    int rv;

    req->hdata = NULL;
    api_req_on_abort(req, NULL, NULL);
    if (st->too_big) {
        api__resp_error_status(req, 413, "SIZE_INVALID",
                               "manifest larger than 4 MiB");
        put_state_free(st);
        return;
    }
    if (st->ref_is_digest)
        digest_parse(st->ref, strlen(st->ref), &algo);
    digest_compute(algo, st->body.data, st->body.len, digest);
    if (st->ref_is_digest && strcmp(digest, st->ref) != 0) {
        api_resp_error(req, "DIGEST_INVALID", "manifest digest does not match");
        put_state_free(st);
        return;
    }
    rv = oci_manifest_parse(api_req_header(req, "Content-Type"), st->body.data,
                            st->body.len, &m, errmsg);
    if (rv != SH_OK) {
        api_resp_error(req, "MANIFEST_INVALID", errmsg);
        put_state_free(st);
        return;
    }
    {
        const char *missing = missing_ref(req, st->name, &m);
        if (missing != NULL && !req->read_indexed) {
            /* Maybe pushed through another node a moment ago: wait for
             * this node to catch up, then check again. */
            oci_manifest_release(&m);
            h_read_index(req, put_again, put_state_drop, st);
            return;
        }
        if (missing != NULL) {
            api_resp_error(req, "MANIFEST_BLOB_UNKNOWN", missing);
            oci_manifest_release(&m);
            put_state_free(st);
            return;
        }
    }

    rec.version = SH_RECORD_VERSION;
    rec.media_type = m.media_type;
    rec.content.data = (uint8_t *)st->body.data;
    rec.content.len = st->body.len;
    rec.subject = m.subject ? m.subject : "";
    rec.artifact_type = m.artifact_type ? m.artifact_type : "";
    rec.created_unix = (uint64_t)time(NULL);
    if (m.kind == OCI_KIND_IMAGE) {
        /* The blobs stored here (GC keeps them while the manifest is):
         * the config and every layer but non-distributable ones. */
        blob_refs = sh_calloc(m.n_layers + 1, sizeof *blob_refs);
        blob_refs[rec.n_blob_refs++] = m.config.digest;
        for (size_t i = 0; i < m.n_layers; i++)
            if (!m.layers[i].has_urls)
                blob_refs[rec.n_blob_refs++] = m.layers[i].digest;
        rec.blob_refs = blob_refs;
    } else {
        man_refs = sh_calloc(m.n_manifests + 1, sizeof *man_refs);
        for (size_t i = 0; i < m.n_manifests; i++)
            man_refs[i] = m.manifests[i].digest;
        rec.n_manifest_refs = m.n_manifests;
        rec.manifest_refs = man_refs;
    }
    desc = oci_manifest_descriptor_json(&m, digest, st->body.len);
    op.repo = st->name;
    op.digest = digest;
    op.record = &rec;
    op.tag = st->ref_is_digest ? "" : st->ref;
    if (m.subject) {
        op.referrer_descriptor.data = (uint8_t *)desc;
        op.referrer_descriptor.len = strlen(desc);
    }
    cmd.op_case = SHOAL__COMMAND__OP_PUT_MANIFEST;
    cmd.put_manifest = &op;

    done = sh_calloc(1, sizeof *done);
    {
        char *path = sh_asprintf("/v2/%s/manifests/%s", st->name, digest);
        done->location = api_req_location(req, path);
        free(path);
    }
    done->digest = sh_strdup(digest);
    done->subject = m.subject ? sh_strdup(m.subject) : NULL;
    done->repo = sh_strdup(st->name);
    done->tag = st->ref_is_digest ? NULL : sh_strdup(st->ref);
    done->media_type = sh_strdup(m.media_type);
    done->size = st->body.len;
    h_propose(req, &cmd, put_applied, done);

    free(desc);
    free(blob_refs);
    free(man_refs);
    oci_manifest_release(&m);
    put_state_free(st);
}

static bool put_body(struct api_req *req, const char *data, size_t len)
{
    struct put_state *st = req->hdata;
    if (st->too_big || st->body.len + len > OCI_MANIFEST_MAX) {
        st->too_big = true;
        return true;
    }
    sh_buf_add(&st->body, data, len);
    return true;
}

static void put_abort(struct api_req *req, void *arg)
{
    (void)req;
    put_state_free(arg);
}

static void put_manifest(struct api_req *req, const char *name, const char *ref)
{
    struct put_state *st;
    enum digest_algo algo;
    bool is_digest = strchr(ref, ':') != NULL;

    if (is_digest && digest_parse(ref, strlen(ref), &algo) != SH_OK) {
        api_resp_error(req, "DIGEST_INVALID", "invalid digest");
        return;
    }
    if (!is_digest && !oci_tag_valid(ref, strlen(ref))) {
        api_resp_error(req, "MANIFEST_INVALID", "invalid tag");
        return;
    }
    if (req->has_length && req->content_length > OCI_MANIFEST_MAX) {
        api__resp_error_status(req, 413, "SIZE_INVALID",
                               "manifest larger than 4 MiB");
        return;
    }
    st = sh_calloc(1, sizeof *st);
    st->name = sh_strdup(name);
    st->ref = sh_strdup(ref);
    st->ref_is_digest = is_digest;
    sh_buf_init(&st->body);
    req->hdata = st;
    req->hooks.on_body = put_body;
    req->hooks.on_end = put_finish;
    api_req_on_abort(req, put_abort, st);
}

/* ------------------------------------------------------------- DELETE */

/* What was deleted: repo and ref ("repo\0ref", one allocation). */
static char *deleted_new(const char *repo, const char *ref)
{
    size_t r = strlen(repo) + 1, f = strlen(ref) + 1;
    char *d = sh_malloc(r + f);

    memcpy(d, repo, r);
    memcpy(d + r, ref, f);
    return d;
}

static void delete_applied(struct api_req *req, int status, void *arg)
{
    char *repo = arg, *ref = repo + strlen(repo) + 1;
    bool is_digest = strchr(ref, ':') != NULL;

    if (status == SH_ENOTFOUND) {
        api_resp_error(req, "MANIFEST_UNKNOWN", NULL);
    } else if (status != SH_OK) {
        h_fail(req, status, "unable to delete manifest");
    } else {
        h_event(req, "delete", repo, is_digest ? ref : NULL,
                is_digest ? NULL : ref, NULL, 0);
        api_resp_send(req, 202, NULL, NULL, 0);
    }
    free(repo);
}

static void delete_manifest(struct api_req *req, const char *name,
                            const char *ref)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    enum digest_algo algo;

    if (strchr(ref, ':') != NULL) {
        Shoal__DeleteManifest op = SHOAL__DELETE_MANIFEST__INIT;
        struct sh_buf key = SH_BUF_INIT;
        bool has;
        if (digest_parse(ref, strlen(ref), &algo) != SH_OK) {
            api_resp_error(req, "DIGEST_INVALID", "invalid digest");
            return;
        }
        meta_key_manifest(&key, name, ref);
        has = meta_has(req->srv->meta, key.data, key.len);
        sh_buf_release(&key);
        if (!has) {
            api_resp_error(req, "MANIFEST_UNKNOWN", ref);
            return;
        }
        op.repo = (char *)name;
        op.digest = (char *)ref;
        cmd.op_case = SHOAL__COMMAND__OP_DELETE_MANIFEST;
        cmd.delete_manifest = &op;
        h_propose_delete(req, &cmd, delete_applied, deleted_new(name, ref));
    } else {
        Shoal__DeleteTag op = SHOAL__DELETE_TAG__INIT;
        if (!oci_tag_valid(ref, strlen(ref))) {
            api_resp_error(req, "MANIFEST_INVALID", "invalid tag");
            return;
        }
        op.repo = (char *)name;
        op.tag = (char *)ref;
        cmd.op_case = SHOAL__COMMAND__OP_DELETE_TAG;
        cmd.delete_tag = &op;
        h_propose_delete(req, &cmd, delete_applied, deleted_new(name, ref));
    }
}

void h_manifest(struct api_req *req, const char *name, const char *ref)
{
    switch (req->method) {
        case HTTP_GET:
        case HTTP_HEAD:
            get_manifest(req, name, ref);
            break;
        case HTTP_PUT:
            put_manifest(req, name, ref);
            break;
        case HTTP_DELETE:
            delete_manifest(req, name, ref);
            break;
        default:
            api_resp_error(req, "UNSUPPORTED", NULL);
    }
}
