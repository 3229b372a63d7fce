/* Raft's TCP transport with Nagle's algorithm off.
 *
 * libraft's TCP transport (raft_uv_tcp) leaves Nagle on.  Raft uses one
 * connection per direction between two servers, so the receiver never
 * writes on a connection it reads and only delayed ACKs (40 ms on Linux)
 * come back: a small message that follows another one, such as the
 * heartbeat that tells followers an entry committed, then waits for that
 * ACK.  A follower answering a forwarded write once it has applied it
 * waited about 43 ms per write.  This wrapper delegates everything to
 * raft_uv_tcp and sets TCP_NODELAY on every stream it hands to Raft,
 * accepted or connected.
 *
 * Possible failure modes are those of raft_uv_tcp (passed through); a
 * stream on which TCP_NODELAY cannot be set is used as it is. */
#include <raft.h>
#include <raft/uv.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "transport.h"

struct nd_transport {
    struct raft_uv_transport *outer; /* what Raft sees */
    struct raft_uv_transport inner;  /* raft_uv_tcp */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

struct nd_connect {
    struct raft_uv_connect req;      /* to the inner transport */
    struct raft_uv_connect *outer;   /* Raft's request */
    raft_uv_connect_cb cb;
};

static void nodelay(struct uv_stream_s *stream)
{
    if (stream != NULL && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void copy_errmsg(struct raft_uv_transport *to,
                        const struct raft_uv_transport *from)
{
    memcpy(to->errmsg, from->errmsg, sizeof to->errmsg);
}

static int nd_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct nd_transport *nd = t->impl;
    int rv = nd->inner.init(&nd->inner, id, address);

    if (rv != 0)
        copy_errmsg(t, &nd->inner);
    return rv;
}

static void nd_accepted(struct raft_uv_transport *inner, raft_id id,
                        const char *address, struct uv_stream_s *stream)
{
    struct nd_transport *nd = inner->data;

    nodelay(stream);
    nd->accept_cb(nd->outer, id, address, stream);
}

static int nd_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct nd_transport *nd = t->impl;
    int rv;

    nd->accept_cb = cb;
    rv = nd->inner.listen(&nd->inner, nd_accepted);
    if (rv != 0)
        copy_errmsg(t, &nd->inner);
    return rv;
}

static void nd_connected(struct raft_uv_connect *req, struct uv_stream_s *stream,
                         int status)
{
    struct nd_connect *c = req->data;
    struct raft_uv_connect *outer = c->outer;
    raft_uv_connect_cb cb = c->cb;

    free(c);
    if (status == 0)
        nodelay(stream);
    cb(outer, stream, status);
}

static int nd_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct nd_transport *nd = t->impl;
    struct nd_connect *c = sh_malloc(sizeof *c);
    int rv;

    c->req.data = c;
    c->outer = req;
    c->cb = cb;
    req->cb = cb;
    rv = nd->inner.connect(&nd->inner, &c->req, id, address, nd_connected);
    if (rv != 0) {
        copy_errmsg(t, &nd->inner);
        free(c);
    }
    return rv;
}

static void nd_closed(struct raft_uv_transport *inner)
{
    struct nd_transport *nd = inner->data;
    nd->close_cb(nd->outer);
}

static void nd_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct nd_transport *nd = t->impl;

    nd->close_cb = cb;
    nd->inner.close(&nd->inner, nd_closed);
}

int cons__transport_init(struct raft_uv_transport *t, struct uv_loop_s *loop)
{
    struct nd_transport *nd = sh_calloc(1, sizeof *nd);
    int rv;

    rv = raft_uv_tcp_init(&nd->inner, loop);
    if (rv != 0) {
        free(nd);
        return rv;
    }
    nd->inner.data = nd;
    nd->outer = t;
    memset(t, 0, sizeof *t);
    t->impl = nd;
    t->init = nd_init;
    t->listen = nd_listen;
    t->connect = nd_connect;
    t->close = nd_close;
    return 0;
}

void cons__transport_close(struct raft_uv_transport *t)
{
    struct nd_transport *nd = t->impl;

    raft_uv_tcp_close(&nd->inner);
    free(nd);
    t->impl = NULL;
}
