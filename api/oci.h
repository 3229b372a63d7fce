/* OCI distribution grammar and manifest parsing (internal to api/).
 *
 * Pure functions: no I/O, no loop.  Everything a client sends is checked
 * here before any state is touched. */
#ifndef SHOAL_API_OCI_H
#define SHOAL_API_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* ------------------------------------------------------------- grammar */

#define OCI_NAME_MAX 255
#define OCI_TAG_MAX 128

/* Repository name: path components matching
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* separated by '/', whole name at most
 * OCI_NAME_MAX bytes. */
bool oci_name_valid(const char *name, size_t len);

/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
bool oci_tag_valid(const char *tag, size_t len);

/* Request Range header for GET blob: "bytes=a-b", "bytes=a-", "bytes=-n"
 * (one range only).  On success sets [*first, *last] inclusive within a
 * blob of `size` bytes.  SH_EMALFORMED: not a byte range we understand
 * (caller serves the whole blob, as RFC 9110 allows); SH_ERANGE:
 * unsatisfiable (416). */
int oci_range_parse(const char *hdr,
                    uint64_t size,
                    uint64_t *first,
                    uint64_t *last);

/* Content-Range of an upload PATCH: "a-b" (what docker sends) or
 * "bytes a-b/<total or *>".  Inclusive bounds, first <= last.
 * SH_EMALFORMED otherwise. */
int oci_content_range_parse(const char *hdr, uint64_t *first, uint64_t *last);

/* ----------------------------------------------------------- manifests */

#define OCI_MANIFEST_MAX (4u * 1024 * 1024)

#define OCI_MT_DOCKER_MANIFEST \
    "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_EMPTY_JSON "application/vnd.oci.empty.v1+json"

enum oci_manifest_kind {
    OCI_KIND_IMAGE = 1, /* docker schema 2 or OCI image manifest */
    OCI_KIND_INDEX = 2, /* docker manifest list or OCI index */
};

struct oci_descriptor {
    char *media_type;    /* owned; never NULL after a successful parse */
    char *digest;        /* owned; valid digest */
    uint64_t size;       /* bytes */
    bool has_urls;       /* non-empty "urls": non-distributable, may be absent */
    char *artifact_type; /* owned, may be NULL */
};

struct oci_manifest {
    enum oci_manifest_kind kind;
    char *media_type;    /* owned: the effective media type */
    char *artifact_type; /* owned, may be NULL: "artifactType", else for an
                            image manifest the config's media type (the
                            referrers API rule) */
    char *subject;       /* owned, may be NULL: digest of "subject" */
    char *annotations;   /* owned, may be NULL: compact JSON object text */
    struct oci_descriptor config;   /* OCI_KIND_IMAGE only */
    struct oci_descriptor *layers;  /* OCI_KIND_IMAGE: owned array */
    size_t n_layers;
    struct oci_descriptor *manifests; /* OCI_KIND_INDEX: owned array */
    size_t n_manifests;
};

/* Parse and validate a manifest pushed with Content-Type `content_type`
 * (may be NULL or empty).  The media type is the Content-Type when it is
 * one of the four supported types, else the body's "mediaType"; when both
 * are present they must agree.  Checks schemaVersion 2, the required
 * fields, every descriptor (mediaType string, valid digest, size >= 0).
 * Returns SH_OK, SH_EMALFORMED (invalid JSON or structure: 400
 * MANIFEST_INVALID) or SH_EUNSUPPORTED (unknown media type, e.g. schema 1:
 * 400 MANIFEST_INVALID).  errmsg (SH_ERRMSG_SIZE) says what is wrong.  On
 * error *out holds nothing to release. */
int oci_manifest_parse(const char *content_type,
                       const void *data,
                       size_t len,
                       struct oci_manifest *out,
                       char *errmsg);
void oci_manifest_release(struct oci_manifest *m);

/* The descriptor of this manifest as a referrers-index entry, compact JSON:
 * {"mediaType":..,"digest":..,"size":..,"artifactType":..,"annotations":..}
 * (artifactType and annotations only when set).  Returns malloc'ed text. */
char *oci_manifest_descriptor_json(const struct oci_manifest *m,
                                   const char *digest,
                                   uint64_t size);

#endif
