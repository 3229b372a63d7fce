/* Response writing: status line and headers, whole bodies, streamed bodies
 * (the handler keeps its buffers until each write callback), errors in the
 * OCI format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "oci.h"

static const char *reason(int status)
{
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 307: return "Temporary Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 416: return "Range Not Satisfiable";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 507: return "Insufficient Storage";
        default: return "Unknown";
    }
}

void api_resp_header(struct api_req *req, const char *name, const char *fmt, ...)
{
    va_list ap;
    sh_buf_addstr(&req->resp_hdrs, name);
    sh_buf_addstr(&req->resp_hdrs, ": ");
    va_start(ap, fmt);
    sh_buf_vaddf(&req->resp_hdrs, fmt, ap);
    va_end(ap);
    sh_buf_addstr(&req->resp_hdrs, "\r\n");
}

static void head_build(struct api_req *req,
                       struct sh_buf *out,
                       int status,
                       const char *content_type,
                       uint64_t content_length)
{
    if (status >= 100 && status < 600)
        req->srv->stats.responses[status / 100]++;
    sh_buf_addf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    sh_buf_addstr(out, "Docker-Distribution-API-Version: registry/2.0\r\n");
    if (content_type != NULL)
        sh_buf_addf(out, "Content-Type: %s\r\n", content_type);
    sh_buf_addf(out, "Content-Length: %llu\r\n",
                (unsigned long long)content_length);
    sh_buf_add(out, req->resp_hdrs.data, req->resp_hdrs.len);
    if (req->close_after)
        sh_buf_addstr(out, "Connection: close\r\n");
    sh_buf_addstr(out, "\r\n");
}

bool api_req_is_head(const struct api_req *req)
{
    return req->method == HTTP_HEAD;
}

void api_resp_send(struct api_req *req,
                   int status,
                   const char *content_type,
                   const void *body,
                   size_t len)
{
    struct sh_buf out = SH_BUF_INIT;

    PRE(!req->resp_started);
    req->resp_started = true;
    req->status = status;
    head_build(req, &out, status, content_type, len);
    if (!api_req_is_head(req) && len > 0)
        sh_buf_add(&out, body, len);
    api__conn_write_copy(req->conn, out.data, out.len);
    sh_buf_release(&out);
    req->resp_done = true;
    api__conn_resp_done(req->conn);
}

void api_resp_error(struct api_req *req, const char *code, const char *detail)
{
    api__resp_error_status(req, api__error_status(code), code, detail);
}

void api__resp_error_status(struct api_req *req, int status, const char *code,
                            const char *detail)
{
    struct sh_buf body = SH_BUF_INIT;

    sh_buf_addstr(&body, "{\"errors\":[{\"code\":");
    sh_buf_add_json_str(&body, code);
    sh_buf_addstr(&body, ",\"message\":");
    sh_buf_add_json_str(&body, api__error_message(code));
    if (detail != NULL) {
        sh_buf_addstr(&body, ",\"detail\":");
        sh_buf_add_json_str(&body, detail);
    }
    sh_buf_addstr(&body, "}]}");
    if (status == 405)
        api_resp_header(req, "Allow", "GET, HEAD, PUT, PATCH, POST, DELETE");
    api_resp_send(req, status, "application/json; charset=utf-8", body.data,
                  body.len);
    sh_buf_release(&body);
}

void api_resp_start(struct api_req *req,
                    int status,
                    const char *content_type,
                    uint64_t content_length)
{
    struct sh_buf out = SH_BUF_INIT;

    PRE(!req->resp_started);
    req->resp_started = true;
    req->status = status;
    req->resp_left = api_req_is_head(req) ? 0 : content_length;
    head_build(req, &out, status, content_type, content_length);
    api__conn_write_copy(req->conn, out.data, out.len);
    sh_buf_release(&out);
}

void api_resp_write(struct api_req *req,
                    const void *data,
                    size_t len,
                    api_write_cb cb,
                    void *arg)
{
    api_resp_write_file(req, data, -1, 0, len, cb, arg);
}

void api_resp_write_file(struct api_req *req,
                         const void *data,
                         int fd,
                         uint64_t off,
                         size_t len,
                         api_write_cb cb,
                         void *arg)
{
    PRE(req->resp_started && !req->resp_done);
    PRE(len <= req->resp_left);
    req->resp_left -= len;
    api__conn_write_file(req->conn, data, fd, off, len, cb, arg);
}

void api_resp_end(struct api_req *req)
{
    PRE(req->resp_started && !req->resp_done);
    req->resp_done = true;
    if (req->resp_left != 0) {
        /* Fewer bytes than announced: the client must not trust the
         * connection any more. */
        req->close_after = true;
    }
    api__conn_resp_done(req->conn);
}

void api_resp_abort(struct api_req *req)
{
    req->resp_done = true;
    req->close_after = true;
    api__conn_close(req->conn);
}

void api__send_continue(struct api_req *req)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!req->expect_continue || req->continue_sent || req->resp_started)
        return;
    req->continue_sent = true;
    api__conn_write_copy(req->conn, msg, sizeof msg - 1);
}

const char *api_req_header(const struct api_req *req, const char *name)
{
    for (unsigned i = 0; i < req->n_hdrs; i++) {
        if (strcasecmp(req->hdrbuf.data + req->hdrs[i].name, name) == 0)
            return req->hdrs[i].value ? req->hdrbuf.data + req->hdrs[i].value
                                      : "";
    }
    return NULL;
}

bool api_req_tls(const struct api_req *req)
{
    return req->conn != NULL && req->conn->tls != NULL;
}

const char *api_req_method(const struct api_req *req)
{
    return http_method_str((enum http_method)req->method);
}

int api_range_parse(const char *hdr, uint64_t size, uint64_t *first,
                    uint64_t *last)
{
    return oci_range_parse(hdr, size, first, last);
}

const char *api_req_target(const struct api_req *req)
{
    return req->url.data;
}

long long api_req_body_length(const struct api_req *req)
{
    if (req->chunked)
        return -1;
    return req->has_length ? (long long)req->content_length : 0;
}

static bool ext_body(struct api_req *req, const char *data, size_t len)
{
    return req->ext_body(req->ext_arg, data, len);
}

static void ext_end(struct api_req *req)
{
    req->ext_end(req->ext_arg);
}

void api_req_stream_body(struct api_req *req,
                         bool (*on_body)(void *arg, const char *data, size_t len),
                         void (*on_end)(void *arg),
                         void *arg)
{
    req->ext_body = on_body;
    req->ext_end = on_end;
    req->ext_arg = arg;
    req->hooks.on_body = ext_body;
    req->hooks.on_end = ext_end;
}

void api_req_resume_body(struct api_req *req)
{
    api__conn_resume(req);
}

void api_req_on_abort(struct api_req *req, api_abort_cb cb, void *arg)
{
    req->abort_cb = cb;
    req->abort_arg = arg;
}

static bool header_token_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 255)
        return false;
    for (; *s; s++) {
        if (*s <= ' ' || *s == '/' || *s == '\\' || *s == '"' || *s == 127)
            return false;
    }
    return true;
}

char *api_req_location(const struct api_req *req, const char *path_and_query)
{
    const struct api_config *cfg = &req->srv->cfg;
    const char *host = NULL;
    const char *proto = api_req_tls(req) ? "https" : "http";

    if (cfg->trust_forwarded) {
        const char *fh = api_req_header(req, "X-Forwarded-Host");
        const char *fp = api_req_header(req, "X-Forwarded-Proto");
        if (header_token_ok(fh))
            host = fh;
        if (fp && (strcasecmp(fp, "https") == 0))
            proto = "https";
    }
    if (host == NULL && cfg->absolute_location) {
        const char *h = api_req_header(req, "Host");
        if (header_token_ok(h))
            host = h;
    }
    if (host == NULL)
        return sh_strdup(path_and_query);
    return sh_asprintf("%s://%s%s", proto, host, path_and_query);
}
