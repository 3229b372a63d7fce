/* OCI endpoint handlers, called by the router with a validated repository
 * name and the raw last path component; both are valid only during the
 * call (handlers copy what they keep).  Internal to api/. */
#ifndef SHOAL_API_HANDLERS_H
#define SHOAL_API_HANDLERS_H

#include "http.h"

void h_base(struct api_req *req);
void h_catalog(struct api_req *req);
void h_tags(struct api_req *req, const char *name);
void h_manifest(struct api_req *req, const char *name, const char *ref);
void h_blob(struct api_req *req, const char *name, const char *digest);
/* uuid is NULL for POST /blobs/uploads/ */
void h_upload(struct api_req *req, const char *name, const char *uuid);
void h_referrers(struct api_req *req, const char *name, const char *digest);

/* Shared helpers (h_common.c). */

/* Map an SH_* code from storage/consensus to an error response. */
void h_fail(struct api_req *req, int code, const char *what);

/* Report a registry event for `req` to the backend (webhooks); tag,
 * media_type may be NULL. */
void h_event(struct api_req *req, const char *action, const char *repo,
             const char *digest, const char *tag, const char *media_type,
             uint64_t size);
/* For read-only endpoints: false (after answering 405) unless the method is
 * GET or HEAD. */
bool h_get_or_head(struct api_req *req);
/* Page through keys for tags and catalog: parse ?n= (default
 * H_PAGE_DEFAULT, capped) and ?last=.  Returns false (after answering) when
 * n is invalid. */
#define H_PAGE_DEFAULT 1000
bool h_page_params(struct api_req *req, size_t *n, char **last);
/* Load a blob record; SH_ENOTFOUND when absent. */
int h_blob_record(struct api_req *req, const char *digest,
                  Shoal__BlobRecord **out);
/* True when `digest` is linked into `repo`. */
bool h_blob_linked(struct api_req *req, const char *repo, const char *digest);
/* Load a manifest record of repo by digest. */
int h_manifest_record(struct api_req *req, const char *repo,
                      const char *digest, Shoal__ManifestRecord **out);
/* Before answering "unknown" for something a write through another node
 * may have just created: wait for the read index (this node has applied
 * everything the leader had committed), then call again(req, arg), with
 * req->read_indexed set so the second pass answers for real.  If the
 * client leaves first, `again` is not called and drop(arg) is. */
typedef void (*h_again_fn)(struct api_req *req, void *arg);
void h_read_index(struct api_req *req, h_again_fn again, void (*drop)(void *),
                  void *arg);

/* Propose a command and call cb(req, status) when applied.  The request's
 * abort is handled: if the client left, cb is not called and the memory is
 * freed. */
typedef void (*h_applied_cb)(struct api_req *req, int status, void *arg);
void h_propose(struct api_req *req, Shoal__Command *cmd, h_applied_cb cb,
               void *arg);
/* h_propose for a delete: SH_ENOTFOUND from a proposal that was resent
 * (consensus.h) is reported as SH_OK, since an earlier copy of the same
 * delete may have removed the object (or another client did since the
 * handler checked it existed: gone either way). */
void h_propose_delete(struct api_req *req, Shoal__Command *cmd,
                      h_applied_cb cb, void *arg);

#endif
