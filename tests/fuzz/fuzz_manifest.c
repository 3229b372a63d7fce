/* libFuzzer target for api/oci_manifest.c.
 *
 * Each input is parsed as a manifest six ways: without a Content-Type, with
 * an unrelated one, and with each supported media type.  A successful parse
 * must hold the invariants oci.h promises and must render as a referrers
 * descriptor; every path must leave nothing allocated (ASan's leak check). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
    NULL,
    "text/plain",
    OCI_MT_DOCKER_MANIFEST,
    OCI_MT_DOCKER_LIST,
    OCI_MT_OCI_MANIFEST,
    OCI_MT_OCI_INDEX,
};

static void check_descriptor(const struct oci_descriptor *d)
{
    SH_ASSERT(d->media_type != NULL && d->media_type[0] != '\0');
    SH_ASSERT(d->digest != NULL);
}

static void check(const struct oci_manifest *m)
{
    SH_ASSERT(m->media_type != NULL);
    if (m->kind == OCI_KIND_IMAGE) {
        check_descriptor(&m->config);
        SH_ASSERT(m->artifact_type != NULL);
        SH_ASSERT(m->n_manifests == 0 && m->manifests == NULL);
        SH_ASSERT((m->n_layers == 0) == (m->layers == NULL));
        for (size_t i = 0; i < m->n_layers; i++)
            check_descriptor(&m->layers[i]);
    } else {
        SH_ASSERT(m->kind == OCI_KIND_INDEX);
        SH_ASSERT(m->n_layers == 0 && m->layers == NULL);
        SH_ASSERT((m->n_manifests == 0) == (m->manifests == NULL));
        for (size_t i = 0; i < m->n_manifests; i++)
            check_descriptor(&m->manifests[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char digest[] =
        "sha256:"
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0];
         i++) {
        char errmsg[SH_ERRMSG_SIZE];
        struct oci_manifest m;
        int rv = oci_manifest_parse(content_types[i], data, size, &m, errmsg);
        if (rv != SH_OK) {
            SH_ASSERT(rv == SH_EMALFORMED || rv == SH_EUNSUPPORTED ||
                      rv == SH_ETOOBIG);
            SH_ASSERT(errmsg[0] != '\0');
            /* Client text is quoted as printable ASCII only. */
            for (const char *c = errmsg; *c != '\0'; c++)
                SH_ASSERT(*c >= 0x20 && *c < 0x7f);
            SH_ASSERT(m.media_type == NULL && m.layers == NULL &&
                      m.manifests == NULL && m.config.digest == NULL);
            continue;
        }
        check(&m);
        char *json = oci_manifest_descriptor_json(&m, digest, size);
        SH_ASSERT(json != NULL && json[0] == '{');
        free(json);
        oci_manifest_release(&m);
    }
    return 0;
}
