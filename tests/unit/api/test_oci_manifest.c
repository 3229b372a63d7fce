/* Unit tests for api/oci_manifest.c: manifest parsing, validation and the
 * referrers descriptor.  Fixtures are real documents (docker hello-world,
 * ORAS-style artifacts) trimmed to what the parser looks at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/oci.h"

/* --------------------------------------------------------------- fixtures */

#define D_CONFIG \
    "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412"
#define D_LAYER \
    "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
#define D_AMD64 \
    "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"
#define D_ARM \
    "sha256:7b8b7289d0536a08eabdf71c20246e23f7116641db7e1d278592236ea4dcb30c"
#define D_EMPTY \
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define D_SHA512                                                           \
    "sha512:"                                                              \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0" \
    "d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

/* docker hello-world linux/amd64, as Docker Hub serves it. */
static const char docker_manifest[] =
    "{\n"
    "   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"" OCI_MT_DOCKER_MANIFEST
    "\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"" MT_DOCKER_CONFIG
    "\",\n"
    "      \"size\": 1470,\n"
    "      \"digest\": \"" D_CONFIG
    "\"\n"
    "   },\n"
    "   \"layers\": [\n"
    "      {\n"
    "         \"mediaType\": \"" MT_DOCKER_LAYER
    "\",\n"
    "         \"size\": 2479,\n"
    "         \"digest\": \"" D_LAYER
    "\"\n"
    "      }\n"
    "   ]\n"
    "}";

/* docker hello-world manifest list (two of its platforms). */
static const char docker_list[] =
    "{\"manifests\":["
    "{\"digest\":\"" D_AMD64 "\",\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST
    "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},"
    "\"size\":525},"
    "{\"digest\":\"" D_ARM "\",\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST
    "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
    "\"variant\":\"v5\"},\"size\":525}],"
    "\"mediaType\":\"application\\/vnd.docker.distribution.manifest.list.v2"
    "+json\",\"schemaVersion\":2}";

/* An OCI image manifest as buildkit writes it. */
static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
    "\","
    "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D_CONFIG
    "\",\"size\":581},"
    "\"layers\":["
    "{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" D_LAYER
    "\",\"size\":2479},"
    "{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" D_AMD64
    "\",\"size\":0}]}";

/* The same without "mediaType", which the OCI spec allows. */
static const char oci_manifest_bare[] =
    "{\"schemaVersion\":2,"
    "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D_CONFIG
    "\",\"size\":581},"
    "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" D_LAYER
    "\",\"size\":2479}]}";

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX
    "\","
    "\"manifests\":["
    "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D_AMD64
    "\",\"size\":1234,\"platform\":{\"architecture\":\"amd64\","
    "\"os\":\"linux\"}},"
    "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D_ARM
    "\",\"size\":1235,\"artifactType\":\"application/vnd.example+type\","
    "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}"
    "}],"
    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"1.0\"}}";

/* An artifact (an SBOM) attached to D_AMD64, as ORAS 1.x pushes it. */
static const char artifact[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
    "\","
    "\"artifactType\":\"application/spdx+json\","
    "\"config\":{\"mediaType\":\"" OCI_MT_EMPTY_JSON "\",\"digest\":\"" D_EMPTY
    "\",\"size\":2,\"data\":\"e30=\"},"
    "\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" D_LAYER
    "\",\"size\":1024,\"annotations\":{\"org.opencontainers.image.title\":"
    "\"sbom.spdx.json\"}}],"
    "\"subject\":{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
    "\",\"digest\":\"" D_AMD64
    "\",\"size\":1234},"
    "\"annotations\":{\"org.opencontainers.image.created\":"
    "\"2023-01-02T03:04:05Z\",\"a.b\":\"x\\\"y\"}}";

/* ---------------------------------------------------------------- helpers */

/* Assert a successful parse; the caller releases *m. */
static void parse_ok(const char *ct, const char *json, struct oci_manifest *m)
{
    char errmsg[SH_ERRMSG_SIZE];
    int rv = oci_manifest_parse(ct, json, strlen(json), m, errmsg);
    if (rv != SH_OK)
        fail_msg("parse failed with %d: %s", rv, errmsg);
    assert_non_null(m->media_type);
}

/* Assert that parsing fails with `want` and an errmsg containing `sub`, and
 * that *out is left with nothing in it. */
static void parse_err_len(const char *ct,
                          const void *json,
                          size_t len,
                          int want,
                          const char *sub)
{
    char errmsg[SH_ERRMSG_SIZE];
    struct oci_manifest m;
    struct oci_manifest zero;
    int rv;

    memset(&m, 0xa5, sizeof m);
    memset(&zero, 0, sizeof zero);
    rv = oci_manifest_parse(ct, json, len, &m, errmsg);
    if (rv != want)
        fail_msg("parse returned %d (%s), want %d", rv,
                 rv == SH_OK ? "ok" : errmsg, want);
    if (strstr(errmsg, sub) == NULL)
        fail_msg("errmsg '%s' does not contain '%s'", errmsg, sub);
    assert_memory_equal(&m, &zero, sizeof m);
}

static void parse_err(const char *ct,
                      const char *json,
                      int want,
                      const char *sub)
{
    parse_err_len(ct, json, strlen(json), want, sub);
}

/* Assert exact error text. */
static void parse_errmsg(const char *ct,
                         const char *json,
                         int want,
                         const char *exact)
{
    char errmsg[SH_ERRMSG_SIZE];
    struct oci_manifest m;
    int rv = oci_manifest_parse(ct, json, strlen(json), &m, errmsg);
    assert_int_equal(rv, want);
    assert_string_equal(errmsg, exact);
}

/* A minimal OCI manifest whose only layer is `layer` (JSON text). */
static char *with_layer(const char *layer)
{
    static const char fmt[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
        "\","
        "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D_CONFIG
        "\",\"size\":1},\"layers\":[%s]}";
    size_t n = sizeof fmt + strlen(layer);
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, fmt, layer);
    return s;
}

static void layer_err(const char *layer, const char *exact)
{
    char *json = with_layer(layer);
    parse_errmsg(NULL, json, SH_EMALFORMED, exact);
    free(json);
}

/* --------------------------------------------------------------- accepted */

static void test_docker_manifest(void **state)
{
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_DOCKER_MANIFEST, docker_manifest, &m);
    assert_int_equal(m.kind, OCI_KIND_IMAGE);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_MANIFEST);
    assert_string_equal(m.config.media_type, MT_DOCKER_CONFIG);
    assert_string_equal(m.config.digest, D_CONFIG);
    assert_int_equal(m.config.size, 1470);
    assert_false(m.config.has_urls);
    assert_null(m.config.artifact_type);
    assert_int_equal(m.n_layers, 1);
    assert_string_equal(m.layers[0].media_type, MT_DOCKER_LAYER);
    assert_string_equal(m.layers[0].digest, D_LAYER);
    assert_int_equal(m.layers[0].size, 2479);
    assert_false(m.layers[0].has_urls);
    assert_null(m.manifests);
    assert_int_equal(m.n_manifests, 0);
    /* The referrers rule: no artifactType, so the config's media type. */
    assert_string_equal(m.artifact_type, MT_DOCKER_CONFIG);
    assert_null(m.subject);
    assert_null(m.annotations);
    oci_manifest_release(&m);

    /* The body alone says what it is. */
    parse_ok(NULL, docker_manifest, &m);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_MANIFEST);
    oci_manifest_release(&m);
    parse_ok("", docker_manifest, &m);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_MANIFEST);
    oci_manifest_release(&m);
}

static void test_docker_list(void **state)
{
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_DOCKER_LIST, docker_list, &m);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_LIST);
    assert_int_equal(m.n_manifests, 2);
    assert_string_equal(m.manifests[0].media_type, OCI_MT_DOCKER_MANIFEST);
    assert_string_equal(m.manifests[0].digest, D_AMD64);
    assert_int_equal(m.manifests[0].size, 525);
    assert_string_equal(m.manifests[1].digest, D_ARM);
    assert_null(m.layers);
    assert_int_equal(m.n_layers, 0);
    assert_null(m.config.digest);
    assert_null(m.artifact_type);
    assert_null(m.subject);
    assert_null(m.annotations);
    oci_manifest_release(&m);
}

static void test_oci_manifest(void **state)
{
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_OCI_MANIFEST, oci_manifest, &m);
    assert_int_equal(m.kind, OCI_KIND_IMAGE);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    assert_string_equal(m.config.digest, D_CONFIG);
    assert_int_equal(m.config.size, 581);
    assert_int_equal(m.n_layers, 2);
    assert_string_equal(m.layers[1].digest, D_AMD64);
    assert_int_equal(m.layers[1].size, 0);
    assert_string_equal(m.artifact_type, MT_OCI_CONFIG);
    oci_manifest_release(&m);
}

static void test_oci_manifest_without_media_type(void **state)
{
    struct oci_manifest m;
    (void)state;

    /* Named by the Content-Type. */
    parse_ok(OCI_MT_OCI_MANIFEST, oci_manifest_bare, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    assert_int_equal(m.n_layers, 1);
    oci_manifest_release(&m);

    /* Named by nothing: config + layers make an OCI image manifest. */
    parse_ok(NULL, oci_manifest_bare, &m);
    assert_int_equal(m.kind, OCI_KIND_IMAGE);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);

    /* An unrelated Content-Type falls back to the same inference. */
    parse_ok("application/json", oci_manifest_bare, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);
}

static void test_oci_index(void **state)
{
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_OCI_INDEX, oci_index, &m);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_string_equal(m.media_type, OCI_MT_OCI_INDEX);
    assert_int_equal(m.n_manifests, 2);
    assert_string_equal(m.manifests[0].digest, D_AMD64);
    assert_int_equal(m.manifests[0].size, 1234);
    assert_null(m.manifests[0].artifact_type);
    assert_string_equal(m.manifests[1].artifact_type,
                        "application/vnd.example+type");
    assert_null(m.artifact_type);
    assert_string_equal(m.annotations,
                        "{\"org.opencontainers.image.ref.name\":\"1.0\"}");
    oci_manifest_release(&m);

    /* An index without mediaType is recognised by "manifests". */
    parse_ok(NULL,
             "{\"schemaVersion\":2,\"artifactType\":\"application/x-t\","
             "\"manifests\":[]}",
             &m);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_string_equal(m.media_type, OCI_MT_OCI_INDEX);
    assert_int_equal(m.n_manifests, 0);
    assert_null(m.manifests);
    assert_string_equal(m.artifact_type, "application/x-t");
    oci_manifest_release(&m);
}

static void test_artifact(void **state)
{
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_OCI_MANIFEST, artifact, &m);
    assert_int_equal(m.kind, OCI_KIND_IMAGE);
    assert_string_equal(m.artifact_type, "application/spdx+json");
    assert_string_equal(m.config.media_type, OCI_MT_EMPTY_JSON);
    assert_string_equal(m.config.digest, D_EMPTY);
    assert_int_equal(m.config.size, 2);
    assert_int_equal(m.n_layers, 1);
    assert_string_equal(m.subject, D_AMD64);
    /* Compact, keys sorted, escapes kept. */
    assert_string_equal(m.annotations,
                        "{\"a.b\":\"x\\\"y\",\"org.opencontainers.image."
                        "created\":\"2023-01-02T03:04:05Z\"}");
    oci_manifest_release(&m);
}

static void test_artifact_without_artifact_type(void **state)
{
    static const char json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
        "\","
        "\"config\":{\"mediaType\":\"" OCI_MT_EMPTY_JSON
        "\",\"digest\":\"" D_EMPTY
        "\",\"size\":2},\"layers\":[],"
        "\"annotations\":{}}";
    struct oci_manifest m;
    (void)state;

    parse_ok(NULL, json, &m);
    assert_int_equal(m.n_layers, 0);
    assert_null(m.layers);
    assert_string_equal(m.artifact_type, OCI_MT_EMPTY_JSON);
    assert_null(m.subject);
    assert_string_equal(m.annotations, "{}");
    oci_manifest_release(&m);
}

static void test_foreign_layer(void **state)
{
    static const char json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST
        "\","
        "\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG
        "\",\"digest\":\"" D_CONFIG
        "\",\"size\":1},\"layers\":["
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff."
        "tar.gzip\",\"size\":1654602741,\"digest\":\"" D_LAYER
        "\","
        "\"urls\":[\"https://mcr.microsoft.com/v2/windows/servercore/"
        "blobs/" D_LAYER
        "\"]},"
        "{\"mediaType\":\"" MT_DOCKER_LAYER "\",\"size\":5,\"digest\":\"" D_ARM
        "\",\"urls\":[]}]}";
    struct oci_manifest m;
    (void)state;

    parse_ok(OCI_MT_DOCKER_MANIFEST, json, &m);
    assert_int_equal(m.n_layers, 2);
    assert_true(m.layers[0].has_urls);
    assert_int_equal(m.layers[0].size, 1654602741);
    assert_false(m.layers[1].has_urls);
    oci_manifest_release(&m);
}

static void test_sha512(void **state)
{
    static const char json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
        "\","
        "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D_SHA512
        "\",\"size\":1},\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER
        "\","
        "\"digest\":\"" D_SHA512
        "\",\"size\":9223372036854775807}],"
        "\"subject\":{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
        "\","
        "\"digest\":\"" D_SHA512 "\",\"size\":3}}";
    struct oci_manifest m;
    (void)state;

    parse_ok(NULL, json, &m);
    assert_string_equal(m.config.digest, D_SHA512);
    assert_string_equal(m.layers[0].digest, D_SHA512);
    assert_true(m.layers[0].size == 9223372036854775807ull);
    assert_string_equal(m.subject, D_SHA512);
    oci_manifest_release(&m);
}

static void test_content_type_forms(void **state)
{
    struct oci_manifest m;
    (void)state;

    /* Parameters and surrounding spaces are ignored, case too. */
    parse_ok(OCI_MT_OCI_MANIFEST "; charset=utf-8", oci_manifest, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);
    parse_ok("  " OCI_MT_OCI_MANIFEST " ;q=1", oci_manifest_bare, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);
    parse_ok("Application/VND.OCI.Image.Manifest.v1+JSON", oci_manifest, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);

    /* A Content-Type we do not know defers to the body's mediaType. */
    parse_ok("text/plain", oci_manifest, &m);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    oci_manifest_release(&m);
}

static void test_unknown_fields_ignored(void **state)
{
    static const char json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX
        "\","
        "\"x-extra\":{\"deep\":[1,2,{\"k\":null}]},"
        "\"manifests\":[{\"mediaType\":\"application/x\",\"digest\":\"" D_ARM
        "\",\"size\":0,\"platform\":{\"os\":\"linux\"},\"x\":true}]}";
    struct oci_manifest m;
    (void)state;

    parse_ok(NULL, json, &m);
    assert_int_equal(m.n_manifests, 1);
    oci_manifest_release(&m);
}

/* --------------------------------------------------------------- rejected */

static void test_media_type_mismatch(void **state)
{
    (void)state;
    parse_errmsg(OCI_MT_DOCKER_MANIFEST, oci_manifest, SH_EMALFORMED,
                 "media type '" OCI_MT_OCI_MANIFEST
                 "' does not match Content-Type '" OCI_MT_DOCKER_MANIFEST "'");
    parse_err(OCI_MT_OCI_INDEX, docker_list, SH_EMALFORMED,
              "does not match Content-Type");
    /* The body's mediaType is compared exactly. */
    parse_err(OCI_MT_OCI_MANIFEST,
              "{\"schemaVersion\":2,\"mediaType\":\"Application/vnd.oci."
              "image.manifest.v1+json\",\"config\":{},\"layers\":[]}",
              SH_EMALFORMED, "does not match Content-Type");
    parse_errmsg(NULL, "{\"schemaVersion\":2,\"mediaType\":7}", SH_EMALFORMED,
                 "mediaType must be a string");
    /* Docker's schema 2 requires mediaType in the body; OCI does not. */
    parse_errmsg(OCI_MT_DOCKER_MANIFEST, oci_manifest_bare, SH_EMALFORMED,
                 "missing mediaType, required for '" OCI_MT_DOCKER_MANIFEST
                 "'");
    parse_errmsg(OCI_MT_DOCKER_LIST, "{\"schemaVersion\":2,\"manifests\":[]}",
                 SH_EMALFORMED,
                 "missing mediaType, required for '" OCI_MT_DOCKER_LIST "'");
}

static void test_schema1(void **state)
{
    static const char schema1[] =
        "{\"schemaVersion\":1,\"name\":\"library/hello-world\","
        "\"tag\":\"latest\",\"architecture\":\"amd64\","
        "\"fsLayers\":[{\"blobSum\":\"" D_LAYER
        "\"}],"
        "\"history\":[{\"v1Compatibility\":\"{}\"}],"
        "\"signatures\":[{\"header\":{\"alg\":\"ES256\"},"
        "\"signature\":\"abc\",\"protected\":\"def\"}]}";
    (void)state;

    parse_errmsg("application/vnd.docker.distribution.manifest.v1+prettyjws",
                 schema1, SH_EUNSUPPORTED,
                 "unsupported manifest media type 'application/vnd.docker."
                 "distribution.manifest.v1+prettyjws'");
    parse_err("application/vnd.docker.distribution.manifest.v1+json", schema1,
              SH_EUNSUPPORTED, "unsupported manifest media type");
    parse_errmsg(NULL, schema1, SH_EUNSUPPORTED,
                 "unknown manifest media type: no mediaType and no "
                 "Content-Type");
    /* Even when the client claims a schema 2 type. */
    parse_errmsg(OCI_MT_DOCKER_MANIFEST, schema1, SH_EUNSUPPORTED,
                 "unsupported schemaVersion 1");
    parse_errmsg(NULL,
                 "{\"schemaVersion\":3,\"mediaType\":\"" OCI_MT_OCI_INDEX
                 "\",\"manifests\":[]}",
                 SH_EUNSUPPORTED, "unsupported schemaVersion 3");
    parse_errmsg(NULL,
                 "{\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":[]}",
                 SH_EMALFORMED, "missing schemaVersion");
    parse_errmsg(NULL,
                 "{\"schemaVersion\":\"2\",\"mediaType\":\"" OCI_MT_OCI_INDEX
                 "\",\"manifests\":[]}",
                 SH_EMALFORMED, "schemaVersion must be an integer");
    parse_errmsg(NULL,
                 "{\"schemaVersion\":2.0,\"mediaType\":\"" OCI_MT_OCI_INDEX
                 "\",\"manifests\":[]}",
                 SH_EMALFORMED, "schemaVersion must be an integer");
}

static void test_unknown_media_type(void **state)
{
    (void)state;
    parse_errmsg("text/plain", "{\"schemaVersion\":2,\"hello\":\"world\"}",
                 SH_EUNSUPPORTED,
                 "unsupported manifest media type 'text/plain'");
    /* The short-lived OCI artifact manifest of image-spec 1.1-rc. */
    parse_errmsg(NULL,
                 "{\"mediaType\":\"application/vnd.oci.artifact.manifest."
                 "v1+json\",\"artifactType\":\"x\",\"blobs\":[]}",
                 SH_EUNSUPPORTED,
                 "unsupported manifest media type 'application/vnd.oci."
                 "artifact.manifest.v1+json'");
    parse_err(NULL, "{}", SH_EUNSUPPORTED, "no mediaType");
    /* config without layers does not make an image manifest. */
    parse_err(NULL, "{\"schemaVersion\":2,\"config\":{}}", SH_EUNSUPPORTED,
              "unknown manifest media type");
}

static void test_errmsg_quotes_safely(void **state)
{
    char json[256];
    char want[SH_ERRMSG_SIZE];
    char x100[101];
    (void)state;

    /* Non-ASCII and control characters become '?'. */
    parse_errmsg(NULL, "{\"mediaType\":\"application/\u00e9t\u00e9\\n\"}",
                 SH_EUNSUPPORTED,
                 /* Split so that no trigraph forms before the quote. */
                 "unsupported manifest media type 'application/??t???"
                 "'");
    parse_errmsg("text/\001plain", "{}", SH_EUNSUPPORTED,
                 "unsupported manifest media type 'text/?plain'");
    /* Long client text is cut at 80 characters. */
    memset(x100, 'x', 100);
    x100[100] = '\0';
    snprintf(json, sizeof json, "{\"mediaType\":\"%s\"}", x100);
    snprintf(want, sizeof want, "unsupported manifest media type '%.80s...'",
             x100);
    parse_errmsg(NULL, json, SH_EUNSUPPORTED, want);
}

static void test_invalid_json(void **state)
{
    (void)state;
    parse_err(NULL, "", SH_EMALFORMED, "invalid json");
    parse_err(OCI_MT_OCI_MANIFEST, "{", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "{\"schemaVersion\":2,}", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "{\"schemaVersion\":2} x", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "null", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "\"str\"", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "\xff\xfe{}", SH_EMALFORMED, "invalid json");
    parse_err(NULL, "{\"a\":\"\\u0000\"}", SH_EMALFORMED, "invalid json");
    parse_err_len(NULL, "{\"a\":1}\0", 8, SH_EMALFORMED, "invalid json");
    parse_err_len(NULL, NULL, 0, SH_EMALFORMED, "invalid json");
    parse_errmsg(NULL, "[]", SH_EMALFORMED, "manifest must be a json object");
    parse_errmsg(OCI_MT_OCI_INDEX, "[{\"manifests\":[]}]", SH_EMALFORMED,
                 "manifest must be a json object");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    parse_err(NULL,
              "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX
              "\","
              "\"manifests\":[],\"manifests\":[]}",
              SH_EMALFORMED, "duplicate object key");
    /* Also inside a descriptor: which digest would we trust? */
    char *json = with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
                            "\",\"digest\":\"" D_ARM "\",\"size\":1}");
    parse_err(NULL, json, SH_EMALFORMED, "duplicate object key");
    free(json);
}

static void test_too_deep(void **state)
{
    enum { DEPTH = 4096 };
    static const char head[] = "{\"schemaVersion\":2,\"x\":";
    size_t len = sizeof head - 1 + 2 * DEPTH + 1;
    char *json = malloc(len);
    (void)state;

    assert_non_null(json);
    memcpy(json, head, sizeof head - 1);
    memset(json + sizeof head - 1, '[', DEPTH);
    memset(json + sizeof head - 1 + DEPTH, ']', DEPTH);
    json[len - 1] = '}';
    parse_err_len(NULL, json, len, SH_EMALFORMED, "maximum parsing depth");
    free(json);
}

static void test_too_big(void **state)
{
    size_t len = OCI_MANIFEST_MAX + 1;
    char *json = malloc(len);
    (void)state;

    assert_non_null(json);
    memset(json, ' ', len);
    json[0] = '{';
    json[len - 1] = '}';
    parse_err_len(NULL, json, len, SH_ETOOBIG, "exceeds the limit");
    free(json);
}

static void test_descriptor_errors(void **state)
{
    (void)state;
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER "\",\"size\":-1}",
              "layers[0]: size must be a non-negative integer");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER "\",\"size\":1.5}",
              "layers[0]: size must be a non-negative integer");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
              "\",\"size\":\"12\"}",
              "layers[0]: size must be a non-negative integer");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER "\"}",
              "layers[0]: missing size");
    layer_err("{\"mediaType\":\"a/b\",\"size\":1}",
              "layers[0]: missing digest");
    layer_err("{\"digest\":\"" D_LAYER "\",\"size\":1}",
              "layers[0]: missing mediaType");
    layer_err("{\"mediaType\":\"\",\"digest\":\"" D_LAYER "\",\"size\":1}",
              "layers[0]: mediaType must be a non-empty string");
    layer_err("{\"mediaType\":null,\"digest\":\"" D_LAYER "\",\"size\":1}",
              "layers[0]: mediaType must be a non-empty string");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":5,\"size\":1}",
              "layers[0]: digest must be a string");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
              "\",\"size\":1,"
              "\"urls\":\"http://x\"}",
              "layers[0]: urls must be an array");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
              "\",\"size\":1,"
              "\"urls\":[\"http://x\",1]}",
              "layers[0]: urls[1] must be a string");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
              "\",\"size\":1,"
              "\"artifactType\":1}",
              "layers[0]: artifactType must be a string");
    layer_err("{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
              "\",\"size\":1,"
              "\"annotations\":{\"k\":1}}",
              "layers[0]: annotations must be an object of strings");
    layer_err("[]", "layers[0]: descriptor must be an object");
    layer_err("null", "layers[0]: descriptor must be an object");
}

static void test_bad_digests(void **state)
{
    static const char *const bad[] = {
        "sha256:zz",
        "",
        "sha256:",
        ":abc",
        "sha256",
        /* Upper-case hex is outside the registered sha256 encoding. */
        "sha256:"
        "FEB5D9FEA6A5E9606AA995E879D862B825965BA48DE054CAAB5EF356DC6B3412",
        /* One character short and one too long. */
        "sha256:"
        "feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b341",
        "sha256:"
        "feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b34120",
        /* sha512 needs 128 hex characters. */
        "sha512:"
        "feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412",
        /* Well formed, unknown algorithm. */
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        " sha256:"
        "feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412",
    };
    char layers[1024];
    char want[SH_ERRMSG_SIZE];
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* The third layer is the bad one. */
        snprintf(layers, sizeof layers,
                 "{\"mediaType\":\"a/b\",\"digest\":\"" D_LAYER
                 "\",\"size\":1},"
                 "{\"mediaType\":\"a/b\",\"digest\":\"" D_ARM
                 "\",\"size\":1},"
                 "{\"mediaType\":\"a/b\",\"digest\":\"%s\",\"size\":1}",
                 bad[i]);
        snprintf(want, sizeof want, "layers[2]: invalid digest '%s'", bad[i]);
        layer_err(layers, want);
    }
}

static void test_missing_fields(void **state)
{
    (void)state;
    parse_errmsg(OCI_MT_OCI_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}",
                 SH_EMALFORMED, "missing config");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\","
                 "\"digest\":\"" D_CONFIG "\",\"size\":1}}",
                 SH_EMALFORMED, "missing layers");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\","
                 "\"digest\":\"" D_CONFIG "\",\"size\":1},\"layers\":{}}",
                 SH_EMALFORMED, "layers must be an array");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\","
                 "\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "config: missing digest");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"config\":\"x\",\"layers\":[]}",
                 SH_EMALFORMED, "config: descriptor must be an object");
    parse_errmsg(OCI_MT_OCI_INDEX, "{\"schemaVersion\":2}", SH_EMALFORMED,
                 "missing manifests");
    parse_errmsg(OCI_MT_OCI_INDEX, "{\"schemaVersion\":2,\"manifests\":null}",
                 SH_EMALFORMED, "manifests must be an array");
    parse_errmsg(OCI_MT_OCI_INDEX,
                 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\","
                 "\"digest\":\"" D_ARM
                 "\",\"size\":1},{\"mediaType\":\"a/b\","
                 "\"digest\":\"" D_ARM "\"}]}",
                 SH_EMALFORMED, "manifests[1]: missing size");
}

static void test_optional_fields(void **state)
{
    (void)state;
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"artifactType\":[],"
                 "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
                 "\",\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "artifactType must be a string");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"subject\":{\"mediaType\":\"a/b\","
                 "\"digest\":\"sha256:1\",\"size\":1},"
                 "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
                 "\",\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "subject: invalid digest 'sha256:1'");
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"subject\":\"" D_ARM
                 "\","
                 "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
                 "\",\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "subject: descriptor must be an object");
    parse_errmsg(OCI_MT_OCI_INDEX,
                 "{\"schemaVersion\":2,\"manifests\":[],"
                 "\"annotations\":{\"a\":\"b\",\"c\":{}}}",
                 SH_EMALFORMED, "annotations must be an object of strings");
    parse_errmsg(OCI_MT_OCI_INDEX,
                 "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":[]}",
                 SH_EMALFORMED, "annotations must be an object of strings");
}

static void test_type_confusion(void **state)
{
    (void)state;
    parse_errmsg(OCI_MT_OCI_MANIFEST,
                 "{\"schemaVersion\":2,\"manifests\":[],"
                 "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
                 "\",\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "image manifest must not have manifests");
    parse_errmsg(OCI_MT_OCI_INDEX,
                 "{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}",
                 SH_EMALFORMED, "index must not have config or layers");
    /* Without any media type a body of both shapes is refused. */
    parse_errmsg(NULL,
                 "{\"schemaVersion\":2,\"manifests\":[],"
                 "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
                 "\",\"size\":1},\"layers\":[]}",
                 SH_EMALFORMED, "index must not have config or layers");
}

static void test_error_frees_partial(void **state)
{
    /* Fails after config, layers, artifactType and subject were copied:
     * the sanitizer build proves nothing leaks. */
    static const char json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
        "\","
        "\"artifactType\":\"x/y\","
        "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D_CONFIG
        "\",\"size\":1},\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D_ARM
        "\",\"size\":1,\"artifactType\":\"q\"}],"
        "\"subject\":{\"mediaType\":\"a/b\",\"digest\":\"" D_ARM
        "\",\"size\":1},\"annotations\":{\"k\":false}}";
    (void)state;
    parse_err(NULL, json, SH_EMALFORMED,
              "annotations must be an object of strings");
}

static void test_errmsg_optional(void **state)
{
    struct oci_manifest m;
    (void)state;
    assert_int_equal(oci_manifest_parse(NULL, "{", 1, &m, NULL), SH_EMALFORMED);
    assert_int_equal(oci_manifest_parse(NULL, docker_manifest,
                                        strlen(docker_manifest), &m, NULL),
                     SH_OK);
    oci_manifest_release(&m);
    /* Releasing twice is harmless: release leaves the struct zeroed. */
    oci_manifest_release(&m);
    oci_manifest_release(NULL);
}

/* ----------------------------------------------------- descriptor_json */

static void test_descriptor_json(void **state)
{
    struct oci_manifest m;
    char *s;
    (void)state;

    parse_ok(NULL, artifact, &m);
    s = oci_manifest_descriptor_json(&m, D_EMPTY, 812);
    assert_string_equal(
        s, "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D_EMPTY
           "\",\"size\":812,\"artifactType\":\"application/spdx+json\","
           "\"annotations\":{\"a.b\":\"x\\\"y\",\"org.opencontainers.image."
           "created\":\"2023-01-02T03:04:05Z\"}}");
    free(s);
    oci_manifest_release(&m);

    /* An index with neither artifactType nor annotations. */
    parse_ok(NULL, docker_list, &m);
    s = oci_manifest_descriptor_json(&m, D_ARM, 0);
    assert_string_equal(s, "{\"mediaType\":\"" OCI_MT_DOCKER_LIST
                           "\",\"digest\":\"" D_ARM "\",\"size\":0}");
    free(s);
    oci_manifest_release(&m);

    /* An image manifest always reports an artifactType. */
    parse_ok(NULL, docker_manifest, &m);
    s = oci_manifest_descriptor_json(&m, D_AMD64, 525);
    assert_string_equal(s, "{\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST
                           "\",\"digest\":\"" D_AMD64
                           "\",\"size\":525,"
                           "\"artifactType\":\"" MT_DOCKER_CONFIG "\"}");
    free(s);
    oci_manifest_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docker_manifest),
        cmocka_unit_test(test_docker_list),
        cmocka_unit_test(test_oci_manifest),
        cmocka_unit_test(test_oci_manifest_without_media_type),
        cmocka_unit_test(test_oci_index),
        cmocka_unit_test(test_artifact),
        cmocka_unit_test(test_artifact_without_artifact_type),
        cmocka_unit_test(test_foreign_layer),
        cmocka_unit_test(test_sha512),
        cmocka_unit_test(test_content_type_forms),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_media_type_mismatch),
        cmocka_unit_test(test_schema1),
        cmocka_unit_test(test_unknown_media_type),
        cmocka_unit_test(test_errmsg_quotes_safely),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_descriptor_errors),
        cmocka_unit_test(test_bad_digests),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_optional_fields),
        cmocka_unit_test(test_type_confusion),
        cmocka_unit_test(test_error_frees_partial),
        cmocka_unit_test(test_errmsg_optional),
        cmocka_unit_test(test_descriptor_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
