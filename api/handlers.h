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
/* Propose a command and call cb(req, status) when applied.  The request's
 * abort is handled: if the client left, cb is not called and the memory is
 * freed. */
typedef void (*h_applied_cb)(struct api_req *req, int status, void *arg);
void h_propose(struct api_req *req, Shoal__Command *cmd, h_applied_cb cb,
               void *arg);

#endif
