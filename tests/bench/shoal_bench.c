/* shoal_bench: throughput and latency benchmark for any OCI / Docker
 * Registry HTTP API v2 endpoint (Shoal, CNCF distribution, ...).
 *
 * One process, one libcurl multi handle, C concurrent HTTP/1.1 transfers
 * over kept-alive connections.  Four timed phases, each printing figures as
 * "name value" lines on stdout (lines starting with '#' are comments):
 *
 *   push   N blobs of S random bytes: POST /v2/<repo>/blobs/uploads/ then
 *          one PUT <location>?digest=... streaming the body (monolithic), or
 *          PATCH chunks then PUT (--push-mode chunked).           blob_push_*
 *   pull   GET every blob, check status, length (and sha256: --verify).
 *                                                                 blob_pull_*
 *   mput   PUT M distinct small OCI manifests by tag.          manifest_put_*
 *   mget   GET those manifests by tag for --duration seconds.  manifest_get_*
 *
 * Blob content is a counter-based PRNG stream keyed by a per-blob seed, so
 * any byte range can be produced at any time: the sha256 of every blob is
 * computed before timing starts; the bytes are either kept in memory (when
 * N x S <= --mem-limit) or generated again while they are sent.
 *
 * Run with --help for the options.  See tests/bench/README.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
#define URL_MAX 4096
#define MAX_SERVER_PIDS 16 /* --server-pids: a cluster's nodes and its balancer */
#define DIGEST_LEN (7 + 64) /* "sha256:" + hex */
#define BODY_KEEP 512       /* response bytes kept for error messages */

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"

enum phase { PH_PUSH, PH_PULL, PH_MPUT, PH_MGET };
#define PHASE_BIT(p) (1u << (p))
#define ALL_PHASES                                                  \
    (PHASE_BIT(PH_PUSH) | PHASE_BIT(PH_PULL) | PHASE_BIT(PH_MPUT) | \
     PHASE_BIT(PH_MGET))

enum op {
    OP_POST,         /* start a blob upload */
    OP_PATCH,        /* chunked: send one chunk */
    OP_PUT_BLOB,     /* monolithic: PUT ?digest= with the whole body */
    OP_PUT_FINAL,    /* chunked: empty PUT ?digest= */
    OP_GET_BLOB,     /* pull */
    OP_PUT_MANIFEST, /* manifest push */
    OP_GET_MANIFEST, /* manifest pull */
};

static const char *const op_names[] = {
    "POST blob upload", "PATCH blob chunk", "PUT blob",     "PUT blob (final)",
    "GET blob",         "PUT manifest",     "GET manifest",
};

struct opts {
    const char *url; /* base URL, trailing '/' removed */
    const char *repo;
    long blobs;
    uint64_t size;
    long conc;
    long manifests;
    long mconc;
    double duration;
    int chunked;
    uint64_t chunk;
    int verify;
    uint64_t seed;
    uint64_t mem_limit;
    unsigned phases;
    double wait;
    long timeout;
    const char *user;
    int insecure;
    pid_t server_pids[MAX_SERVER_PIDS]; /* --server-pids */
    int nserver_pids;
};

struct blob {
    uint64_t seed; /* PRNG key when mem is NULL */
    uint64_t size;
    unsigned char *mem; /* whole content, or NULL: generated on the fly */
    char digest[DIGEST_LEN + 1];
};

struct lat {
    int64_t *v; /* microseconds */
    size_t n, cap;
};

struct bench;

struct slot {
    CURL *h;
    struct bench *b;
    enum op op;
    int ready; /* h holds the options of op */
    long job;
    const struct blob *blob;
    /* upload source: bytes [src_start, src_end) of blob */
    uint64_t src_start, src_pos, src_end;
    uint64_t next_off; /* chunked push: next PATCH offset */
    long midx;         /* manifest index */
    struct curl_slist *own_hdrs;
    EVP_MD_CTX *md;
    int hashing;
    uint64_t rx;
    char url[URL_MAX];
    char location[URL_MAX];
    int location_too_long;
    char dcd[128]; /* Docker-Content-Digest */
    char body[BODY_KEEP + 1];
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct bench {
    struct opts o;
    CURLM *multi;
    struct slot *slots;
    long nslots;
    char prefix[URL_MAX]; /* <url>/v2/<repo> */
    char origin[URL_MAX]; /* scheme://authority of url */
    struct curl_slist *h_plain, *h_octet, *h_mput, *h_mget;

    /* current phase */
    enum phase phase;
    long next_job, njobs, active;
    int added;
    double deadline;
    const struct blob *pblobs; /* blobs of a push phase */
    struct lat lat;
    double cpu_pct; /* this process's CPU use during the phase, % of one core */
    double server_cpu; /* the servers' CPU seconds during the phase, or -1 */

    /* data */
    struct blob *blobs;
    long nblobs;
    struct blob setup[2]; /* config and layer of the manifests */
    char **mbody;
    size_t *mlen;
    char (*mdigest)[DIGEST_LEN + 1];
    long nman;
    char tagprefix[32];
};

/* ---- small helpers ---------------------------------------------------- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
                                                                ...)
{
    va_list ap;
    fflush(stdout);
    fputs("shoal_bench: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        die("out of memory");
    return p;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) the --server-pids processes have used so
 * far, or -1 when none was given.  A process that is gone counts nothing:
 * its time is lost for the phase, which a benchmark whose server died
 * reports as a failed request anyway. */
static double server_cpu_seconds(const struct opts *o)
{
    static long hz;
    double total = 0;

    if (o->nserver_pids == 0)
        return -1;
    if (hz == 0 && (hz = sysconf(_SC_CLK_TCK)) <= 0)
        hz = 100;
    for (int i = 0; i < o->nserver_pids; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)o->server_pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "pid (comm) state ...": comm may hold spaces and parentheses, so
         * fields are counted from the last ')'.  utime and stime are the
         * 14th and 15th fields, the 12th and 13th after it. */
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (!p || sscanf(p + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &ut, &st) != 2)
            continue;
        total += (double)(ut + st) / (double)hz;
    }
    return total;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void checked_snprintf_fail(void)
{
    die("URL too long");
}

#define XSNPRINTF(buf, ...)                                 \
    do {                                                    \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__); \
        if (n_ < 0 || (size_t)n_ >= sizeof(buf))            \
            checked_snprintf_fail();                        \
    } while (0)

static void lat_add(struct lat *l, int64_t us)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        int64_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            die("out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in milliseconds. */
static double pct_ms(const struct lat *l, double p)
{
    if (l->n == 0)
        return 0.0;
    size_t rank = (size_t)ceil(p / 100.0 * (double)l->n);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return (double)l->v[rank - 1] / 1000.0;
}

/* ---- blob content ----------------------------------------------------- */

/* splitmix64 finaliser: word i of a stream is mix(seed + (i+1) * gamma), so
 * any offset can be generated directly (counter mode). */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t gen_word(uint64_t seed, uint64_t i)
{
    return mix64(seed + (i + 1) * 0x9E3779B97F4A7C15ULL);
}

static void gen_fill(uint64_t seed,
                     uint64_t off,
                     unsigned char *dst,
                     size_t len)
{
    uint64_t w = off / 8;
    size_t skip = (size_t)(off % 8);
    if (skip && len) {
        uint64_t v = gen_word(seed, w++);
        unsigned char tmp[8];
        memcpy(tmp, &v, 8);
        size_t n = 8 - skip;
        if (n > len)
            n = len;
        memcpy(dst, tmp + skip, n);
        dst += n;
        len -= n;
    }
    while (len >= 8) {
        uint64_t v = gen_word(seed, w++);
        memcpy(dst, &v, 8);
        dst += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = gen_word(seed, w);
        memcpy(dst, &v, len);
    }
}

static void hex_digest(const unsigned char *md, char out[DIGEST_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hx[md[i] >> 4];
        out[7 + 2 * i + 1] = hx[md[i] & 15];
    }
    out[DIGEST_LEN] = '\0';
}

static void sha256_mem(const void *p, size_t n, char out[DIGEST_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        die("sha256 failed");
    hex_digest(md, out);
}

/* Build the blob set: per-blob seeds, content (if it fits the memory limit)
 * and digests.  All before any timing. */
static void prepare_blobs(struct bench *b)
{
    const struct opts *o = &b->o;
    uint64_t total = (uint64_t)o->blobs * o->size;
    int preload = total <= o->mem_limit;
    size_t scratch_len = 4u << 20;
    unsigned char *scratch = preload ? NULL : xmalloc(scratch_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    double t0 = now();

    if (!md)
        die("EVP_MD_CTX_new failed");
    b->nblobs = o->blobs;
    b->blobs = xcalloc((size_t)o->blobs, sizeof(struct blob));
    for (long i = 0; i < o->blobs; i++) {
        struct blob *bl = &b->blobs[i];
        unsigned char dig[32];
        unsigned int dlen = 0;
        bl->seed = mix64(o->seed ^ mix64(0xB10B0000ULL + (uint64_t)i));
        bl->size = o->size;
        if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL))
            die("sha256 init failed");
        if (preload) {
            bl->mem = xmalloc((size_t)o->size);
            gen_fill(bl->seed, 0, bl->mem, (size_t)o->size);
            EVP_DigestUpdate(md, bl->mem, (size_t)o->size);
        } else {
            for (uint64_t off = 0; off < o->size; off += scratch_len) {
                size_t n = (size_t)(o->size - off < scratch_len ? o->size - off
                                                                : scratch_len);
                gen_fill(bl->seed, off, scratch, n);
                EVP_DigestUpdate(md, scratch, n);
            }
        }
        if (!EVP_DigestFinal_ex(md, dig, &dlen) || dlen != 32)
            die("sha256 failed");
        hex_digest(dig, bl->digest);
    }
    EVP_MD_CTX_free(md);
    free(scratch);
    note("prepared %ld blobs of %" PRIu64 " bytes (%s) in %.2f s", o->blobs,
         o->size, preload ? "kept in memory" : "streamed from PRNG",
         now() - t0);
    printf("# blob_data %s\n", preload ? "memory" : "stream");
}

/* Config and layer blobs of the manifests, and the M manifests. */
static void prepare_manifests(struct bench *b)
{
    const struct opts *o = &b->o;
    static unsigned char layer[1024]; /* an empty tar archive */
    static char config[512];
    struct blob *lay = &b->setup[1], *cfg = &b->setup[0];

    lay->mem = layer;
    lay->size = sizeof(layer);
    sha256_mem(layer, sizeof(layer), lay->digest);
    int n = snprintf(config, sizeof(config),
                     "{\"architecture\":\"amd64\",\"os\":\"linux\","
                     "\"config\":{\"Labels\":{\"dev.shoal.bench.seed\":"
                     "\"%016" PRIx64
                     "\"}},\"rootfs\":{\"type\":\"layers\","
                     "\"diff_ids\":[\"%s\"]}}",
                     o->seed, lay->digest);
    if (n < 0 || (size_t)n >= sizeof(config))
        die("config too long");
    cfg->mem = (unsigned char *)config;
    cfg->size = (uint64_t)n;
    sha256_mem(config, (size_t)n, cfg->digest);

    snprintf(b->tagprefix, sizeof(b->tagprefix), "b%08" PRIx64 "-",
             o->seed & 0xffffffffu);
    b->nman = o->manifests;
    b->mbody = xcalloc((size_t)b->nman, sizeof(char *));
    b->mlen = xcalloc((size_t)b->nman, sizeof(size_t));
    b->mdigest = xcalloc((size_t)b->nman, sizeof(*b->mdigest));
    for (long i = 0; i < b->nman; i++) {
        char buf[2048];
        n = snprintf(
            buf, sizeof(buf),
            "{\"schemaVersion\":2,\"mediaType\":\"" MT_MANIFEST
            "\",\"config\":{\"mediaType\":\"" MT_CONFIG
            "\",\"digest\":\"%s\",\"size\":%" PRIu64
            "},\"layers\":[{\"mediaType\":\"" MT_LAYER
            "\",\"digest\":\"%s\",\"size\":%" PRIu64
            "}],\"annotations\":{\"dev.shoal.bench.seed\":\"%016" PRIx64
            "\",\"dev.shoal.bench.index\":\"%ld\"}}",
            cfg->digest, cfg->size, lay->digest, lay->size, o->seed, i);
        if (n < 0 || (size_t)n >= sizeof(buf))
            die("manifest too long");
        b->mbody[i] = xmalloc((size_t)n + 1);
        memcpy(b->mbody[i], buf, (size_t)n + 1);
        b->mlen[i] = (size_t)n;
        sha256_mem(buf, (size_t)n, b->mdigest[i]);
    }
}

/* ---- libcurl callbacks ------------------------------------------------ */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct slot *s = ud;
    size_t want = size * nitems;
    uint64_t left = s->src_end - s->src_pos;
    if ((uint64_t)want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (s->blob->mem)
        memcpy(buf, s->blob->mem + s->src_pos, want);
    else
        gen_fill(s->blob->seed, s->src_pos, (unsigned char *)buf, want);
    s->src_pos += want;
    return want;
}

/* libcurl rewinds the body when it re-sends a request, e.g. on a kept-alive
 * connection the server had closed. */
static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct slot *s = ud;
    if (origin != SEEK_SET || offset < 0 ||
        (uint64_t)offset > s->src_end - s->src_start)
        return CURL_SEEKFUNC_CANTSEEK;
    s->src_pos = s->src_start + (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct slot *s = ud;
    size_t len = size * nmemb;
    s->rx += len;
    if (s->hashing)
        EVP_DigestUpdate(s->md, ptr, len);
    if (s->body_len < BODY_KEEP) {
        size_t n = BODY_KEEP - s->body_len;
        if (n > len)
            n = len;
        memcpy(s->body + s->body_len, ptr, n);
        s->body_len += n;
        s->body[s->body_len] = '\0';
    }
    return len;
}

/* If the header line is "name: value", copy the trimmed value to out. */
static int header_value(const char *line,
                        size_t len,
                        const char *name,
                        char *out,
                        size_t cap,
                        int *too_long)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= cap) {
        if (too_long)
            *too_long = 1;
        n = cap - 1;
    }
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct slot *s = ud;
    size_t len = size * nitems;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or a 100): forget the last */
        s->location[0] = '\0';
        s->location_too_long = 0;
        s->dcd[0] = '\0';
    } else if (header_value(buf, len, "location", s->location,
                            sizeof(s->location), &s->location_too_long)) {
    } else {
        header_value(buf, len, "docker-content-digest", s->dcd, sizeof(s->dcd),
                     NULL);
    }
    return len;
}

/* ---- requests --------------------------------------------------------- */

static void setopt_fail(CURLcode rc)
{
    die("curl_easy_setopt: %s", curl_easy_strerror(rc));
}

#define SETOPT(h, opt, val)                                 \
    do {                                                    \
        CURLcode rc_ = curl_easy_setopt((h), (opt), (val)); \
        if (rc_ != CURLE_OK)                                \
            setopt_fail(rc_);                               \
    } while (0)

/* Prepare s->h for a request of type op to s->url.  Returns 1 when the
 * handle already carries every option of op from its previous request (a
 * GET or a manifest PUT after one of the same kind): only the URL was set,
 * and the caller sets what differs.  Returns 0 after a full reset. */
static int common_opts(struct bench *b, struct slot *s, enum op op)
{
    CURL *h = s->h;
    int keep =
        s->ready && s->op == op &&
        (op == OP_GET_BLOB || op == OP_GET_MANIFEST || op == OP_PUT_MANIFEST);
    s->op = op;
    s->location[0] = '\0';
    s->location_too_long = 0;
    s->dcd[0] = '\0';
    s->body_len = 0;
    s->body[0] = '\0';
    s->rx = 0;
    s->hashing = 0;
    s->errbuf[0] = '\0';
    if (keep) {
        SETOPT(h, CURLOPT_URL, s->url);
        return 1;
    }
    curl_easy_reset(h);
    curl_slist_free_all(s->own_hdrs);
    s->own_hdrs = NULL;
    s->ready = 1;
    SETOPT(h, CURLOPT_PRIVATE, (void *)s);
    SETOPT(h, CURLOPT_URL, s->url);
    SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_TCP_NODELAY, 1L);
    SETOPT(h, CURLOPT_ERRORBUFFER, s->errbuf);
    SETOPT(h, CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(h, CURLOPT_HEADERDATA, (void *)s);
    SETOPT(h, CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(h, CURLOPT_WRITEDATA, (void *)s);
    SETOPT(h, CURLOPT_USERAGENT, "shoal_bench/1");
    SETOPT(h, CURLOPT_CONNECTTIMEOUT, 10L);
    if (b->o.timeout > 0)
        SETOPT(h, CURLOPT_TIMEOUT, b->o.timeout);
    if (b->o.user) {
        SETOPT(h, CURLOPT_USERPWD, b->o.user);
        SETOPT(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    if (b->o.insecure) {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (op == OP_PATCH || op == OP_PUT_BLOB || op == OP_GET_BLOB) {
        /* big buffers: fewer callbacks and syscalls for large bodies */
        SETOPT(h, CURLOPT_BUFFERSIZE, 512L * 1024);
        SETOPT(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    }
    return 0;
}

static void issue(struct bench *b, struct slot *s)
{
    CURLMcode mc = curl_multi_add_handle(b->multi, s->h);
    if (mc != CURLM_OK)
        die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
    b->active++;
    b->added = 1;
}

/* Upload body: bytes [start, end) of s->blob. */
static void set_body(struct slot *s, uint64_t start, uint64_t end)
{
    s->src_start = s->src_pos = start;
    s->src_end = end;
    SETOPT(s->h, CURLOPT_UPLOAD, 1L);
    SETOPT(s->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(end - start));
    SETOPT(s->h, CURLOPT_READFUNCTION, read_cb);
    SETOPT(s->h, CURLOPT_READDATA, (void *)s);
    SETOPT(s->h, CURLOPT_SEEKFUNCTION, seek_cb);
    SETOPT(s->h, CURLOPT_SEEKDATA, (void *)s);
}

/* Resolve the Location of the last response into s->url, adding a
 * "digest=" query parameter when digest is not NULL. */
static void follow_location(struct bench *b, struct slot *s, const char *digest)
{
    char loc[URL_MAX];

    if (s->location[0] == '\0')
        die("%s %s: response has no Location header", op_names[s->op], s->url);
    if (s->location_too_long)
        die("%s %s: Location header longer than %d bytes", op_names[s->op],
            s->url, URL_MAX);
    if (strncasecmp(s->location, "http://", 7) == 0 ||
        strncasecmp(s->location, "https://", 8) == 0) {
        XSNPRINTF(loc, "%s", s->location);
    } else if (s->location[0] == '/' && s->location[1] != '/') {
        XSNPRINTF(loc, "%s%s", b->origin, s->location);
    } else {
        /* relative reference: let libcurl resolve it */
        CURLU *u = curl_url();
        char *full = NULL;
        if (!u || curl_url_set(u, CURLUPART_URL, s->url, 0) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_URL, s->location, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
            die("cannot resolve Location '%s' against %s", s->location, s->url);
        XSNPRINTF(loc, "%s", full);
        curl_free(full);
        curl_url_cleanup(u);
    }
    if (digest) {
        /* "sha256:" -> "sha256%3A", as Go's url.Values encodes it */
        XSNPRINTF(s->url, "%s%cdigest=sha256%%3A%s", loc,
                  strchr(loc, '?') ? '&' : '?', digest + 7);
    } else {
        XSNPRINTF(s->url, "%s", loc);
    }
}

static void issue_post(struct bench *b, struct slot *s)
{
    XSNPRINTF(s->url, "%s/blobs/uploads/", b->prefix);
    common_opts(b, s, OP_POST);
    SETOPT(s->h, CURLOPT_POST, 1L);
    SETOPT(s->h, CURLOPT_POSTFIELDS, "");
    SETOPT(s->h, CURLOPT_POSTFIELDSIZE, 0L);
    SETOPT(s->h, CURLOPT_HTTPHEADER, b->h_plain);
    issue(b, s);
}

static void issue_put_blob(struct bench *b, struct slot *s)
{
    follow_location(b, s, s->blob->digest);
    common_opts(b, s, OP_PUT_BLOB);
    set_body(s, 0, s->blob->size);
    SETOPT(s->h, CURLOPT_HTTPHEADER, b->h_octet);
    issue(b, s);
}

static void issue_patch(struct bench *b, struct slot *s)
{
    char range[96];
    uint64_t start = s->next_off;
    uint64_t end = start + b->o.chunk;
    if (end > s->blob->size)
        end = s->blob->size;
    follow_location(b, s, NULL);
    common_opts(b, s, OP_PATCH);
    set_body(s, start, end);
    SETOPT(s->h, CURLOPT_CUSTOMREQUEST, "PATCH");
    snprintf(range, sizeof(range), "Content-Range: %" PRIu64 "-%" PRIu64, start,
             end - 1);
    struct curl_slist *l = NULL, *t;
    const char *hv[] = {"Expect:", "Content-Type: application/octet-stream",
                        range};
    for (size_t i = 0; i < sizeof(hv) / sizeof(hv[0]); i++) {
        t = curl_slist_append(l, hv[i]);
        if (!t)
            die("out of memory");
        l = t;
    }
    s->own_hdrs = l;
    SETOPT(s->h, CURLOPT_HTTPHEADER, l);
    issue(b, s);
}

static void issue_put_final(struct bench *b, struct slot *s)
{
    follow_location(b, s, s->blob->digest);
    common_opts(b, s, OP_PUT_FINAL);
    set_body(s, 0, 0);
    SETOPT(s->h, CURLOPT_HTTPHEADER, b->h_octet);
    issue(b, s);
}

static void issue_get_blob(struct bench *b, struct slot *s)
{
    XSNPRINTF(s->url, "%s/blobs/%s", b->prefix, s->blob->digest);
    if (!common_opts(b, s, OP_GET_BLOB)) {
        SETOPT(s->h, CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(s->h, CURLOPT_MAXREDIRS, 5L);
    }
    if (b->o.verify) {
        if (!EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
            die("sha256 init failed");
        s->hashing = 1;
    }
    issue(b, s);
}

static void issue_put_manifest(struct bench *b, struct slot *s, long i)
{
    s->midx = i;
    XSNPRINTF(s->url, "%s/manifests/%s%ld", b->prefix, b->tagprefix, i);
    if (!common_opts(b, s, OP_PUT_MANIFEST)) {
        SETOPT(s->h, CURLOPT_CUSTOMREQUEST, "PUT");
        SETOPT(s->h, CURLOPT_HTTPHEADER, b->h_mput);
    }
    SETOPT(s->h, CURLOPT_POSTFIELDS, b->mbody[i]);
    SETOPT(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->mlen[i]);
    issue(b, s);
}

static void issue_get_manifest(struct bench *b, struct slot *s, long i)
{
    s->midx = i;
    XSNPRINTF(s->url, "%s/manifests/%s%ld", b->prefix, b->tagprefix, i);
    if (!common_opts(b, s, OP_GET_MANIFEST)) {
        SETOPT(s->h, CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(s->h, CURLOPT_MAXREDIRS, 5L);
        SETOPT(s->h, CURLOPT_HTTPHEADER, b->h_mget);
    }
    if (b->o.verify) {
        if (!EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
            die("sha256 init failed");
        s->hashing = 1;
    }
    issue(b, s);
}

/* ---- phase driver ----------------------------------------------------- */

static void start_next_job(struct bench *b, struct slot *s)
{
    if (b->next_job >= b->njobs)
        return;
    if (b->deadline > 0 && now() >= b->deadline)
        return;
    long j = b->next_job++;
    s->job = j;
    switch (b->phase) {
        case PH_PUSH:
            s->blob = &b->pblobs[j];
            s->next_off = 0;
            issue_post(b, s);
            break;
        case PH_PULL:
            s->blob = &b->blobs[j];
            issue_get_blob(b, s);
            break;
        case PH_MPUT:
            issue_put_manifest(b, s, j);
            break;
        case PH_MGET:
            issue_get_manifest(b, s, j % b->nman);
            break;
    }
}

__attribute__((noreturn)) static void fail_status(struct slot *s,
                                                  long code,
                                                  long want)
{
    /* keep the body printable */
    for (size_t i = 0; i < s->body_len; i++)
        if (s->body[i] == '\n' || s->body[i] == '\r')
            s->body[i] = ' ';
    die("%s %s: HTTP status %ld, expected %ld; body: %s", op_names[s->op],
        s->url, code, want, s->body_len ? s->body : "(empty)");
}

static void check_dcd(struct slot *s, const char *want)
{
    if (s->dcd[0] && strcmp(s->dcd, want) != 0)
        die("%s %s: Docker-Content-Digest %s, expected %s", op_names[s->op],
            s->url, s->dcd, want);
}

static void check_hash(struct slot *s, const char *want)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char got[DIGEST_LEN + 1];
    if (!s->hashing)
        return;
    if (!EVP_DigestFinal_ex(s->md, md, &mdlen) || mdlen != 32)
        die("sha256 failed");
    s->hashing = 0;
    hex_digest(md, got);
    if (strcmp(got, want) != 0)
        die("%s %s: content has digest %s, expected %s", op_names[s->op],
            s->url, got, want);
}

static void on_done(struct bench *b, struct slot *s, CURLcode rc)
{
    long code = 0;
    curl_off_t total_us = 0;

    if (rc != CURLE_OK)
        die("%s %s: %s%s%s", op_names[s->op], s->url, curl_easy_strerror(rc),
            s->errbuf[0] ? ": " : "", s->errbuf);
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(s->h, CURLINFO_TOTAL_TIME_T, &total_us);

    switch (s->op) {
        case OP_POST:
            if (code != 202)
                fail_status(s, code, 202);
            if (b->o.chunked && b->phase == PH_PUSH && s->blob->size > 0)
                issue_patch(b, s);
            else if (b->o.chunked && b->phase == PH_PUSH)
                issue_put_final(b, s);
            else
                issue_put_blob(b, s);
            return;
        case OP_PATCH:
            if (code != 202)
                fail_status(s, code, 202);
            s->next_off = s->src_end;
            if (s->next_off < s->blob->size)
                issue_patch(b, s);
            else
                issue_put_final(b, s);
            return;
        case OP_PUT_BLOB:
        case OP_PUT_FINAL:
            if (code != 201)
                fail_status(s, code, 201);
            check_dcd(s, s->blob->digest);
            break;
        case OP_GET_BLOB:
            if (code != 200)
                fail_status(s, code, 200);
            if (s->rx != s->blob->size)
                die("%s %s: got %" PRIu64 " bytes, expected %" PRIu64,
                    op_names[s->op], s->url, s->rx, s->blob->size);
            check_hash(s, s->blob->digest);
            break;
        case OP_PUT_MANIFEST:
            if (code != 201)
                fail_status(s, code, 201);
            check_dcd(s, b->mdigest[s->midx]);
            lat_add(&b->lat, (int64_t)total_us);
            break;
        case OP_GET_MANIFEST:
            if (code != 200)
                fail_status(s, code, 200);
            if (s->rx != b->mlen[s->midx])
                die("%s %s: got %" PRIu64 " bytes, expected %zu",
                    op_names[s->op], s->url, s->rx, b->mlen[s->midx]);
            check_dcd(s, b->mdigest[s->midx]);
            check_hash(s, b->mdigest[s->midx]);
            lat_add(&b->lat, (int64_t)total_us);
            break;
    }
    start_next_job(b, s);
}

/* Run njobs jobs (or until duration seconds have passed) at concurrency
 * conc.  Returns the wall time from the first request to the last
 * response. */
static double run_phase(struct bench *b,
                        enum phase ph,
                        long njobs,
                        long conc,
                        double duration)
{
    b->phase = ph;
    b->next_job = 0;
    b->njobs = njobs;
    b->active = 0;
    b->lat.n = 0;
    double c0 = cpu_seconds();
    double s0 = server_cpu_seconds(&b->o);
    double t0 = now();
    b->deadline = duration > 0 ? t0 + duration : 0;
    for (long i = 0; i < conc && i < b->nslots; i++)
        start_next_job(b, &b->slots[i]);
    while (b->active > 0) {
        int running = 0, queued = 0;
        CURLMcode mc = curl_multi_perform(b->multi, &running);
        if (mc != CURLM_OK)
            die("curl_multi_perform: %s", curl_multi_strerror(mc));
        b->added = 0;
        CURLMsg *m;
        while ((m = curl_multi_info_read(b->multi, &queued))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *h = m->easy_handle;
            CURLcode rc = m->data.result;
            void *priv = NULL;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
            curl_multi_remove_handle(b->multi, h);
            b->active--;
            on_done(b, priv, rc);
        }
        if (b->active > 0 && !b->added) {
            mc = curl_multi_poll(b->multi, NULL, 0, 1000, NULL);
            if (mc != CURLM_OK)
                die("curl_multi_poll: %s", curl_multi_strerror(mc));
        }
    }
    double t = now() - t0;
    b->cpu_pct = t > 0 ? (cpu_seconds() - c0) / t * 100.0 : 0.0;
    b->server_cpu = s0 < 0 ? -1 : server_cpu_seconds(&b->o) - s0;
    return t;
}

/* ---- setup ------------------------------------------------------------ */

static struct curl_slist *make_list(const char *a, const char *c)
{
    struct curl_slist *l = curl_slist_append(NULL, a);
    if (l && c) {
        struct curl_slist *t = curl_slist_append(l, c);
        if (!t)
            l = NULL;
        else
            l = t;
    }
    if (!l)
        die("out of memory");
    return l;
}

/* GET /v2/ until it answers 200 or wait seconds have passed. */
static void ping(struct bench *b)
{
    char url[URL_MAX];
    CURL *h = curl_easy_init();
    double until = now() + b->o.wait;
    long code = 0;
    CURLcode rc;
    char errbuf[CURL_ERROR_SIZE];

    if (!h)
        die("curl_easy_init failed");
    XSNPRINTF(url, "%s/v2/", b->o.url);
    for (;;) {
        struct slot tmp;
        memset(&tmp, 0, sizeof(tmp));
        errbuf[0] = '\0';
        curl_easy_reset(h);
        SETOPT(h, CURLOPT_URL, url);
        SETOPT(h, CURLOPT_NOSIGNAL, 1L);
        SETOPT(h, CURLOPT_TIMEOUT, 5L);
        SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
        SETOPT(h, CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(h, CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(h, CURLOPT_WRITEDATA, (void *)&tmp);
        if (b->o.user) {
            SETOPT(h, CURLOPT_USERPWD, b->o.user);
            SETOPT(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        }
        if (b->o.insecure) {
            SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
            SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        rc = curl_easy_perform(h);
        code = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200)
            break;
        if (now() >= until) {
            if (rc != CURLE_OK)
                die("GET %s: %s%s%s", url, curl_easy_strerror(rc),
                    errbuf[0] ? ": " : "", errbuf);
            if (code == 401)
                die("GET %s: 401, the registry wants credentials (only "
                    "basic auth via --user is supported)",
                    url);
            die("GET %s: HTTP status %ld, expected 200", url, code);
        }
        usleep(100 * 1000);
    }
    curl_easy_cleanup(h);
}

static void init_bench(struct bench *b)
{
    const struct opts *o = &b->o;
    const char *p;

    XSNPRINTF(b->prefix, "%s/v2/%s", o->url, o->repo);
    p = strstr(o->url, "://");
    p = p ? p + 3 : o->url;
    p += strcspn(p, "/?#");
    if ((size_t)(p - o->url) >= sizeof(b->origin))
        die("URL too long");
    memcpy(b->origin, o->url, (size_t)(p - o->url));
    b->origin[p - o->url] = '\0';

    b->h_plain = make_list("Expect:", "Content-Type:");
    b->h_octet = make_list("Expect:", "Content-Type: application/octet-stream");
    b->h_mput = make_list("Expect:", "Content-Type: " MT_MANIFEST);
    b->h_mget = make_list("Accept: " MT_MANIFEST, NULL);

    b->nslots = o->conc > o->mconc ? o->conc : o->mconc;
    if (b->nslots < 2)
        b->nslots = 2;
    b->slots = xcalloc((size_t)b->nslots, sizeof(struct slot));
    for (long i = 0; i < b->nslots; i++) {
        struct slot *s = &b->slots[i];
        s->b = b;
        s->h = curl_easy_init();
        s->md = EVP_MD_CTX_new();
        if (!s->h || !s->md)
            die("out of memory");
    }
    b->multi = curl_multi_init();
    if (!b->multi)
        die("curl_multi_init failed");
    curl_multi_setopt(b->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, b->nslots);
    curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, b->nslots);
}

static void free_bench(struct bench *b)
{
    for (long i = 0; i < b->nslots; i++) {
        curl_easy_cleanup(b->slots[i].h);
        curl_slist_free_all(b->slots[i].own_hdrs);
        EVP_MD_CTX_free(b->slots[i].md);
    }
    curl_multi_cleanup(b->multi);
    free(b->slots);
    curl_slist_free_all(b->h_plain);
    curl_slist_free_all(b->h_octet);
    curl_slist_free_all(b->h_mput);
    curl_slist_free_all(b->h_mget);
    for (long i = 0; i < b->nblobs; i++)
        free(b->blobs[i].mem);
    free(b->blobs);
    for (long i = 0; i < b->nman; i++)
        free(b->mbody[i]);
    free(b->mbody);
    free(b->mlen);
    free(b->mdigest);
    free(b->lat.v);
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs(
        "usage: shoal_bench --url URL [options]\n"
        "Benchmark an OCI / Docker Registry HTTP API v2 endpoint.\n"
        "\n"
        "  --url URL                  registry base URL, e.g. "
        "http://127.0.0.1:5000\n"
        "  --repo NAME                repository to use (bench/x)\n"
        "  --blobs N                  blobs to push and pull (16)\n"
        "  --size SIZE                bytes per blob; suffixes K/KiB, M/MiB, "
        "G/GiB\n"
        "                             are binary (64MiB)\n"
        "  --concurrency C            concurrent blob transfers (4)\n"
        "  --push-mode MODE           monolithic: POST + PUT with the body "
        "(default)\n"
        "                             chunked: POST + PATCH chunks + PUT\n"
        "  --chunk-size SIZE          PATCH size in chunked mode (8MiB)\n"
        "  --manifests M              manifests to PUT (2000)\n"
        "  --manifest-concurrency MC  concurrent manifest requests (32)\n"
        "  --duration SECONDS         length of the manifest GET phase (10)\n"
        "  --verify                   also check the sha256 of every "
        "pulled body\n"
        "  --phases LIST              comma list of push,pull,mput,mget, "
        "all or none\n"
        "                             (all)\n"
        "  --seed N                   content seed (random); same seed, same "
        "blobs,\n"
        "                             manifests and tags\n"
        "  --mem-limit SIZE           keep blob data in memory if N x SIZE "
        "fits,\n"
        "                             else regenerate it while sending "
        "(2GiB)\n"
        "  --wait SECONDS             retry GET /v2/ until 200 for this long "
        "(0)\n"
        "  --timeout SECONDS          per-request timeout, 0 = none (600)\n"
        "  --user USER:PASSWORD       HTTP basic authentication\n"
        "  --insecure                 do not verify TLS certificates\n"
        "  --server-pids PID,...      also report the CPU these processes "
        "(the\n"
        "                             registry's) spend in each timed phase, "
        "from\n"
        "                             /proc: s/GiB for blobs, us/request for "
        "manifests\n"
        "  --help\n"
        "\n"
        "Output: one \"name value\" line per figure on stdout; '#' lines are "
        "comments.\n"
        "Exit status: 0 ok, 1 a request failed, 2 bad usage.\n",
        f);
}

__attribute__((noreturn)) static void bad_usage(const char *what,
                                                const char *arg)
{
    fprintf(stderr, "shoal_bench: bad %s: '%s' (see --help)\n", what, arg);
    exit(2);
}

static uint64_t parse_size(const char *what, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double mul = 1;
    if (end == s || v < 0 || isnan(v))
        bad_usage(what, s);
    if (*end) {
        static const struct {
            const char *suf;
            double mul;
        } sufs[] = {
            {"b", 1},
            {"k", 1024.0},
            {"kb", 1024.0},
            {"kib", 1024.0},
            {"m", 1024.0 * 1024},
            {"mb", 1024.0 * 1024},
            {"mib", 1024.0 * 1024},
            {"g", 1024.0 * 1024 * 1024},
            {"gb", 1024.0 * 1024 * 1024},
            {"gib", 1024.0 * 1024 * 1024},
        };
        size_t i;
        for (i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
            if (strcasecmp(end, sufs[i].suf) == 0)
                break;
        if (i == sizeof(sufs) / sizeof(sufs[0]))
            bad_usage(what, s);
        mul = sufs[i].mul;
    }
    v *= mul;
    if (v > 1e15)
        bad_usage(what, s);
    return (uint64_t)(v + 0.5);
}

static long parse_long(const char *what, const char *s, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < min)
        bad_usage(what, s);
    return v;
}

static double parse_double(const char *what, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0))
        bad_usage(what, s);
    return v;
}

static unsigned parse_phases(const char *s)
{
    unsigned m = 0;
    char buf[256];
    if (strlen(s) >= sizeof(buf))
        bad_usage("--phases", s);
    strcpy(buf, s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "push") == 0)
            m |= PHASE_BIT(PH_PUSH);
        else if (strcmp(t, "pull") == 0)
            m |= PHASE_BIT(PH_PULL);
        else if (strcmp(t, "mput") == 0)
            m |= PHASE_BIT(PH_MPUT);
        else if (strcmp(t, "mget") == 0)
            m |= PHASE_BIT(PH_MGET);
        else if (strcmp(t, "all") == 0)
            m |= ALL_PHASES;
        else if (strcmp(t, "none") != 0)
            bad_usage("--phases", s);
    }
    return m;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&s, sizeof(s), 1, f) != 1)
            s = 0;
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return s ^ mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     (uint64_t)getpid());
}

static void parse_pids(struct opts *o, const char *s)
{
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v <= 0 || v > INT_MAX ||
            (*end && *end != ',') || o->nserver_pids == MAX_SERVER_PIDS)
            bad_usage("--server-pids", s);
        o->server_pids[o->nserver_pids++] = (pid_t)v;
        p = *end ? end + 1 : end;
    }
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_REPO,
        O_BLOBS,
        O_SIZE,
        O_CONC,
        O_MODE,
        O_CHUNK,
        O_MAN,
        O_MCONC,
        O_DUR,
        O_VERIFY,
        O_PHASES,
        O_SEED,
        O_MEM,
        O_WAIT,
        O_TIMEOUT,
        O_USER,
        O_INSECURE,
        O_SERVER_PIDS,
        O_HELP,
    };
    static const struct option lo[] = {
        {"url", required_argument, NULL, O_URL},
        {"repo", required_argument, NULL, O_REPO},
        {"blobs", required_argument, NULL, O_BLOBS},
        {"size", required_argument, NULL, O_SIZE},
        {"concurrency", required_argument, NULL, O_CONC},
        {"push-mode", required_argument, NULL, O_MODE},
        {"chunk-size", required_argument, NULL, O_CHUNK},
        {"manifests", required_argument, NULL, O_MAN},
        {"manifest-concurrency", required_argument, NULL, O_MCONC},
        {"duration", required_argument, NULL, O_DUR},
        {"verify", no_argument, NULL, O_VERIFY},
        {"phases", required_argument, NULL, O_PHASES},
        {"seed", required_argument, NULL, O_SEED},
        {"mem-limit", required_argument, NULL, O_MEM},
        {"wait", required_argument, NULL, O_WAIT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"user", required_argument, NULL, O_USER},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"server-pids", required_argument, NULL, O_SERVER_PIDS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int have_seed = 0;

    memset(o, 0, sizeof(*o));
    o->repo = "bench/x";
    o->blobs = 16;
    o->size = 64u << 20;
    o->conc = 4;
    o->manifests = 2000;
    o->mconc = 32;
    o->duration = 10;
    o->chunk = 8u << 20;
    o->mem_limit = 2ull << 30;
    o->phases = ALL_PHASES;
    o->timeout = 600;

    for (;;) {
        int c = getopt_long(argc, argv, "", lo, NULL);
        if (c == -1)
            break;
        switch (c) {
            case O_URL:
                o->url = optarg;
                break;
            case O_REPO:
                o->repo = optarg;
                break;
            case O_BLOBS:
                o->blobs = parse_long("--blobs", optarg, 0);
                break;
            case O_SIZE:
                o->size = parse_size("--size", optarg);
                break;
            case O_CONC:
                o->conc = parse_long("--concurrency", optarg, 1);
                break;
            case O_MODE:
                if (strcmp(optarg, "monolithic") == 0)
                    o->chunked = 0;
                else if (strcmp(optarg, "chunked") == 0)
                    o->chunked = 1;
                else
                    bad_usage("--push-mode", optarg);
                break;
            case O_CHUNK:
                o->chunk = parse_size("--chunk-size", optarg);
                if (o->chunk == 0)
                    bad_usage("--chunk-size", optarg);
                break;
            case O_MAN:
                o->manifests = parse_long("--manifests", optarg, 0);
                break;
            case O_MCONC:
                o->mconc = parse_long("--manifest-concurrency", optarg, 1);
                break;
            case O_DUR:
                o->duration = parse_double("--duration", optarg);
                break;
            case O_VERIFY:
                o->verify = 1;
                break;
            case O_PHASES:
                o->phases = parse_phases(optarg);
                break;
            case O_SEED: {
                char *end;
                o->seed = strtoull(optarg, &end, 0);
                if (end == optarg || *end)
                    bad_usage("--seed", optarg);
                have_seed = 1;
                break;
            }
            case O_MEM:
                o->mem_limit = parse_size("--mem-limit", optarg);
                break;
            case O_WAIT:
                o->wait = parse_double("--wait", optarg);
                break;
            case O_TIMEOUT:
                o->timeout = parse_long("--timeout", optarg, 0);
                break;
            case O_USER:
                o->user = optarg;
                break;
            case O_INSECURE:
                o->insecure = 1;
                break;
            case O_SERVER_PIDS:
                parse_pids(o, optarg);
                break;
            case O_HELP:
                usage(stdout);
                exit(0);
            default:
                usage(stderr);
                exit(2);
        }
    }
    if (optind < argc)
        bad_usage("argument", argv[optind]);
    if (!o->url) {
        fputs("shoal_bench: --url is required\n", stderr);
        usage(stderr);
        exit(2);
    }
    /* strip trailing slashes */
    static char url[URL_MAX];
    if (strlen(o->url) >= sizeof(url))
        bad_usage("--url", o->url);
    strcpy(url, o->url);
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    o->url = url;
    if (!have_seed)
        o->seed = random_seed();
    if (o->blobs == 0 || o->size == 0)
        o->phases &= ~(PHASE_BIT(PH_PUSH) | PHASE_BIT(PH_PULL));
    if (o->manifests == 0)
        o->phases &= ~(PHASE_BIT(PH_MPUT) | PHASE_BIT(PH_MGET));
    if (o->duration <= 0)
        o->phases &= ~PHASE_BIT(PH_MGET);
    if ((size_t)o->size != o->size)
        bad_usage("--size", "too large");
}

/* ---- main ------------------------------------------------------------- */

/* The servers' CPU cost of the phase just run, when --server-pids was
 * given: seconds per GiB moved for a blob phase, microseconds per request
 * for a manifest phase.  Only the timed phase counts, not the preparation
 * of the data before it. */
static void print_server_cpu_per_gib(const struct bench *b,
                                     const char *name,
                                     double bytes)
{
    if (b->server_cpu >= 0 && bytes > 0)
        printf("%s_server_cpu_s_per_GiB %.3f\n", name,
               b->server_cpu / (bytes / (1024.0 * MIB)));
}

static void print_server_cpu_per_req(const struct bench *b,
                                     const char *name,
                                     size_t reqs)
{
    if (b->server_cpu >= 0 && reqs > 0)
        printf("%s_server_cpu_us_per_req %.1f\n", name,
               b->server_cpu * 1e6 / (double)reqs);
}

static void print_lat(const char *name, struct lat *l, int with_max)
{
    double sum = 0;
    for (size_t i = 0; i < l->n; i++)
        sum += (double)l->v[i];
    qsort(l->v, l->n, sizeof(l->v[0]), cmp_i64);
    printf("%s_mean_ms %.3f\n", name, l->n ? sum / (double)l->n / 1000.0 : 0.0);
    printf("%s_p50_ms %.3f\n", name, pct_ms(l, 50));
    printf("%s_p99_ms %.3f\n", name, pct_ms(l, 99));
    if (with_max)
        printf("%s_max_ms %.3f\n", name, pct_ms(l, 100));
}

int main(int argc, char **argv)
{
    static struct bench bench;
    struct bench *b = &bench;
    const struct opts *o = &b->o;
    double t;

    parse_opts(&b->o, argc, argv);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init failed");
    init_bench(b);
    ping(b);

    printf("# shoal_bench url=%s repo=%s seed=%" PRIu64
           " blobs=%ld size=%" PRIu64
           " concurrency=%ld push_mode=%s"
           " manifests=%ld manifest_concurrency=%ld duration=%g verify=%d\n",
           o->url, o->repo, o->seed, o->blobs, o->size, o->conc,
           o->chunked ? "chunked" : "monolithic", o->manifests, o->mconc,
           o->duration, o->verify);
    if (o->chunked)
        printf("# chunk_size %" PRIu64 "\n", o->chunk);
    fflush(stdout);

    if (o->phases & (PHASE_BIT(PH_PUSH) | PHASE_BIT(PH_PULL)))
        prepare_blobs(b);
    if (o->phases & (PHASE_BIT(PH_MPUT) | PHASE_BIT(PH_MGET)))
        prepare_manifests(b);
    double bytes = (double)o->blobs * (double)o->size;

    if (o->phases & PHASE_BIT(PH_PUSH)) {
        note("push: %ld blobs x %" PRIu64 " bytes, concurrency %ld, %s",
             o->blobs, o->size, o->conc, o->chunked ? "chunked" : "monolithic");
        b->pblobs = b->blobs;
        t = run_phase(b, PH_PUSH, b->nblobs, o->conc, 0);
        printf("blob_push_MiBps %.1f\n", bytes / MIB / t);
        printf("blob_push_seconds %.3f\n", t);
        printf("blob_push_client_cpu_pct %.1f\n", b->cpu_pct);
        print_server_cpu_per_gib(b, "blob_push", bytes);
        fflush(stdout);
    }
    if (o->phases & PHASE_BIT(PH_PULL)) {
        note("pull: %ld blobs, concurrency %ld%s", o->blobs, o->conc,
             o->verify ? ", verifying sha256" : "");
        t = run_phase(b, PH_PULL, b->nblobs, o->conc, 0);
        printf("blob_pull_MiBps %.1f\n", bytes / MIB / t);
        printf("blob_pull_seconds %.3f\n", t);
        printf("blob_pull_client_cpu_pct %.1f\n", b->cpu_pct);
        print_server_cpu_per_gib(b, "blob_pull", bytes);
        fflush(stdout);
    }
    if (o->phases & PHASE_BIT(PH_MPUT)) {
        /* config and layer first: registries check a manifest's references.
         * Not timed; always monolithic. */
        int chunked = b->o.chunked;
        b->o.chunked = 0;
        b->pblobs = b->setup;
        run_phase(b, PH_PUSH, 2, 2, 0);
        b->o.chunked = chunked;

        note("manifest put: %ld manifests, concurrency %ld", o->manifests,
             o->mconc);
        t = run_phase(b, PH_MPUT, b->nman, o->mconc, 0);
        printf("manifest_put_rps %.1f\n", (double)b->lat.n / t);
        print_lat("manifest_put", &b->lat, 1);
        printf("manifest_put_client_cpu_pct %.1f\n", b->cpu_pct);
        print_server_cpu_per_req(b, "manifest_put", b->lat.n);
        fflush(stdout);
    }
    if (o->phases & PHASE_BIT(PH_MGET)) {
        note("manifest get: %g s over %ld tags, concurrency %ld", o->duration,
             b->nman, o->mconc);
        t = run_phase(b, PH_MGET, LONG_MAX, o->mconc, o->duration);
        printf("manifest_get_rps %.1f\n", (double)b->lat.n / t);
        print_lat("manifest_get", &b->lat, 1);
        printf("manifest_get_client_cpu_pct %.1f\n", b->cpu_pct);
        print_server_cpu_per_req(b, "manifest_get", b->lat.n);
        printf("# manifest_get_requests %zu\n", b->lat.n);
        fflush(stdout);
    }
    free_bench(b);
    curl_global_cleanup();
    return 0;
}
