/* Blob uploads: POST (session, monolithic ?digest=, cross-repository
 * ?mount=&from=), PATCH (streamed or chunked with Content-Range), PUT
 * (?digest=, optional last chunk), GET (status) and DELETE.
 *
 * The happy path of a body-carrying request: acquire the session -> body
 * bytes are copied into it (reading pauses while its buffer is full) ->
 * at the end of the body flush (PATCH) or commit (PUT, monolithic POST) ->
 * answer.  Sessions belong to the backend; this file only speaks HTTP.
 *
 * Possible failure modes are: unknown session (404 BLOB_UPLOAD_UNKNOWN),
 * out-of-order chunk (416 RANGE_INVALID, nothing appended), digest
 * mismatch (400 DIGEST_INVALID, session discarded), the client leaving
 * mid-body (the session is released, or cancelled for a monolithic POST
 * whose session nobody else knows). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "handlers.h"
#include "oci.h"

enum up_kind { UP_MONOLITHIC, UP_PATCH, UP_PUT };

struct up_op {
    struct api_req *req;   /* NULL once the client left */
    struct api_upload *up; /* held session; NULL once released */
    const struct api_backend *be; /* outlives the request */
    enum up_kind kind;
    char *name;            /* repository */
    char *digest;          /* for commits */
    char uuid[64];         /* session id */
    bool waiting;          /* backend flush/commit in flight */
};

static const struct api_backend *be_of(struct api_req *req)
{
    return &req->srv->be;
}

static void op_free(struct up_op *op)
{
    free(op->name);
    free(op->digest);
    free(op);
}

static void add_session_headers(struct api_req *req, const char *name,
                                const char *uuid, uint64_t offset)
{
    char *path = sh_asprintf("/v2/%s/blobs/uploads/%s", name, uuid);
    char *loc = api_req_location(req, path);
    api_resp_header(req, "Location", "%s", loc);
    api_resp_header(req, "Range", "0-%llu",
                    (unsigned long long)(offset ? offset - 1 : 0));
    api_resp_header(req, "Docker-Upload-UUID", "%s", uuid);
    free(loc);
    free(path);
}

static void answer_created(struct api_req *req, const char *name,
                           const char *digest)
{
    char *path = sh_asprintf("/v2/%s/blobs/%s", name, digest);
    char *loc = api_req_location(req, path);
    api_resp_header(req, "Location", "%s", loc);
    api_resp_header(req, "Docker-Content-Digest", "%s", digest);
    api_resp_send(req, 201, NULL, NULL, 0);
    free(loc);
    free(path);
}

/* ------------------------------------------------------------- bodies */

static void op_resume(void *arg)
{
    struct up_op *op = arg;
    if (op->req != NULL)
        api__conn_resume(op->req);
}

static bool op_body(struct api_req *req, const char *data, size_t len)
{
    struct up_op *op = req->hdata;
    bool full = be_of(req)->upload_append(op->up, data, len, op_resume, op);
    return !full;
}

static void op_abort(struct api_req *req, void *arg)
{
    struct up_op *op = arg;
    const struct api_backend *be = be_of(req);

    op->req = NULL;
    if (op->waiting)
        return; /* the backend callback frees */
    if (op->up != NULL) {
        if (op->kind == UP_MONOLITHIC)
            be->upload_cancel(op->up);
        else
            be->upload_release(op->up);
    }
    op_free(op);
}

static void commit_done(void *arg, int status)
{
    struct up_op *op = arg;
    struct api_req *req = op->req;

    op->up = NULL; /* commit released it */
    if (req != NULL) {
        api_req_on_abort(req, NULL, NULL);
        if (status == SH_OK)
            answer_created(req, op->name, op->digest);
        else if (status == SH_EDIGEST)
            api_resp_error(req, "DIGEST_INVALID",
                           "digest does not match the uploaded content");
        else if (status == SH_EINVAL)
            api_resp_error(req, "DIGEST_INVALID", "unsupported digest");
        else if (status == SH_ETOOBIG)
            api_resp_error(req, "SIZE_INVALID", "blob too large");
        else
            h_fail(req, status, "unable to commit blob");
    }
    op_free(op);
}

static void flush_done(void *arg, int status)
{
    struct up_op *op = arg;
    struct api_req *req = op->req;
    const struct api_backend *be;

    op->waiting = false;
    if (req == NULL) {
        /* Client gone: the session stays for a retry. */
        op->be->upload_release(op->up);
        op->up = NULL;
        op_free(op);
        return;
    }
    be = be_of(req);
    api_req_on_abort(req, NULL, NULL);
    if (status != SH_OK) {
        be->upload_release(op->up);
        h_fail(req, status, "unable to write upload");
    } else {
        add_session_headers(req, op->name, op->uuid,
                            be->upload_offset(op->up));
        be->upload_release(op->up);
        api_resp_send(req, 202, NULL, NULL, 0);
    }
    op->up = NULL;
    op_free(op);
}

static void op_end(struct api_req *req)
{
    struct up_op *op = req->hdata;
    const struct api_backend *be = be_of(req);

    req->hdata = NULL;
    op->waiting = true;
    if (op->kind == UP_PATCH)
        be->upload_flush(op->up, flush_done, op);
    else
        be->upload_commit(op->up, op->digest, commit_done, op);
}

static void op_start(struct api_req *req, struct up_op *op)
{
    const struct api_backend *be = be_of(req);

    /* A body with a length on an empty session is the whole blob. */
    if (op->kind != UP_PATCH && be->upload_whole != NULL && req->has_length &&
        req->content_length > 0 && be->upload_offset(op->up) == 0)
        be->upload_whole(op->up, op->digest, req->content_length);
    op->req = req;
    op->be = be;
    req->hdata = op;
    req->hooks.on_body = op_body;
    req->hooks.on_end = op_end;
    api_req_on_abort(req, op_abort, op);
}

/* Checks a Content-Range against the session offset; answers on error. */
static bool range_ok(struct api_req *req, const char *name, const char *uuid,
                     uint64_t offset)
{
    const char *cr = api_req_header(req, "Content-Range");
    uint64_t first, last;

    if (cr == NULL)
        return true;
    if (oci_content_range_parse(cr, &first, &last) != SH_OK ||
        first != offset ||
        (req->has_length && req->content_length != last - first + 1)) {
        add_session_headers(req, name, uuid, offset);
        api_resp_error(req, "RANGE_INVALID",
                       "Content-Range does not continue the upload");
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- POST */

static void mount_applied(struct api_req *req, int status, void *arg)
{
    char **pair = arg; /* name, digest */
    if (status == SH_OK)
        answer_created(req, pair[0], pair[1]);
    else
        h_fail(req, status, "unable to mount blob");
    free(pair[0]);
    free(pair[1]);
    free(pair);
}

/* Try a cross-repository mount; false when the caller falls back to a new
 * session. */
static bool try_mount(struct api_req *req, const char *name, const char *digest,
                      const char *from)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobLink op = SHOAL__BLOB_LINK__INIT;
    enum digest_algo algo;
    char **pair;

    if (digest_parse(digest, strlen(digest), &algo) != SH_OK)
        return false;
    /* Mounting reads the source: without pull there, the client gets a
     * plain upload session, as if the blob were not there. */
    if (from == NULL || !oci_name_valid(from, strlen(from)) ||
        (req->srv->auth != NULL &&
         !auth__permits(req, "repository", from, AUTH_PULL)) ||
        !h_blob_linked(req, from, digest))
        return false;
    if (h_blob_linked(req, name, digest)) {
        answer_created(req, name, digest);
        return true;
    }
    op.repo = (char *)name;
    op.digest = (char *)digest;
    op.at_unix = (uint64_t)time(NULL);
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_LINK;
    cmd.blob_link = &op;
    pair = sh_malloc(2 * sizeof *pair);
    pair[0] = sh_strdup(name);
    pair[1] = sh_strdup(digest);
    h_propose(req, &cmd, mount_applied, pair);
    return true;
}

static void upload_post(struct api_req *req, const char *name)
{
    const struct api_backend *be = be_of(req);
    char *mount = api__query_get(req, "mount");
    char *digest = api__query_get(req, "digest");
    struct api_upload *up;
    struct up_op *op;
    char uuid[64];
    enum digest_algo algo;
    int rv;

    if (mount != NULL) {
        char *from = api__query_get(req, "from");
        bool done = try_mount(req, name, mount, from);
        free(from);
        free(mount);
        if (done) {
            free(digest);
            return;
        }
    }
    if (digest != NULL && digest_parse(digest, strlen(digest), &algo) != SH_OK) {
        api_resp_error(req, "DIGEST_INVALID", "invalid digest");
        free(digest);
        return;
    }
    rv = be->upload_create(be->data, name, uuid, &up);
    if (rv != SH_OK) {
        free(digest);
        h_fail(req, rv, "unable to create upload");
        return;
    }
    if (digest == NULL) {
        add_session_headers(req, name, uuid, 0);
        be->upload_release(up);
        api_resp_send(req, 202, NULL, NULL, 0);
        return;
    }
    op = sh_calloc(1, sizeof *op);
    op->up = up;
    op->kind = UP_MONOLITHIC;
    op->name = sh_strdup(name);
    op->digest = digest;
    snprintf(op->uuid, sizeof op->uuid, "%s", uuid);
    op_start(req, op);
}

/* ------------------------------------------------ PATCH, PUT, GET, DELETE */

static void upload_session(struct api_req *req, const char *name,
                           const char *uuid)
{
    const struct api_backend *be = be_of(req);
    struct api_upload *up;
    struct up_op *op;
    char *digest = NULL;
    enum digest_algo algo;
    int rv;

    if (req->method == HTTP_PUT) {
        digest = api__query_get(req, "digest");
        if (digest == NULL ||
            digest_parse(digest, strlen(digest), &algo) != SH_OK) {
            free(digest);
            api_resp_error(req, "DIGEST_INVALID", "missing or invalid digest");
            return;
        }
    } else if (req->method != HTTP_PATCH && req->method != HTTP_GET &&
               req->method != HTTP_DELETE) {
        api_resp_error(req, "UNSUPPORTED", NULL);
        return;
    }
    /* A session another node owns: that node answers (proxied). */
    if (be->upload_remote != NULL &&
        be->upload_remote(be->data, req, name, uuid)) {
        free(digest);
        return;
    }
    rv = be->upload_acquire(be->data, name, uuid, &up);
    if (rv == SH_EBUSY) {
        free(digest);
        api_resp_header(req, "Retry-After", "1");
        api_resp_error(req, "BLOB_UPLOAD_INVALID",
                       "another request is writing this upload");
        return;
    }
    if (rv != SH_OK) {
        free(digest);
        api_resp_error(req, "BLOB_UPLOAD_UNKNOWN", uuid);
        return;
    }
    switch (req->method) {
        case HTTP_GET:
            add_session_headers(req, name, uuid, be->upload_offset(up));
            be->upload_release(up);
            api_resp_send(req, 204, NULL, NULL, 0);
            return;
        case HTTP_DELETE:
            be->upload_cancel(up);
            api_resp_send(req, 204, NULL, NULL, 0);
            return;
        default:
            break;
    }
    if (!range_ok(req, name, uuid, be->upload_offset(up))) {
        be->upload_release(up);
        free(digest);
        return;
    }
    op = sh_calloc(1, sizeof *op);
    op->up = up;
    op->kind = req->method == HTTP_PUT ? UP_PUT : UP_PATCH;
    op->name = sh_strdup(name);
    op->digest = digest;
    snprintf(op->uuid, sizeof op->uuid, "%s", uuid);
    op_start(req, op);
}

void h_upload(struct api_req *req, const char *name, const char *uuid)
{
    if (uuid == NULL) {
        if (req->method == HTTP_POST)
            upload_post(req, name);
        else
            api_resp_error(req, "UNSUPPORTED", NULL);
        return;
    }
    if (strlen(uuid) >= 64) {
        api_resp_error(req, "BLOB_UPLOAD_UNKNOWN", "invalid upload id");
        return;
    }
    upload_session(req, name, uuid);
}
