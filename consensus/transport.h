/* Raft's TCP transport with TCP_NODELAY (transport.c).  Internal to
 * consensus/. */
#ifndef SHOAL_CONSENSUS_TRANSPORT_H
#define SHOAL_CONSENSUS_TRANSPORT_H

#include <raft/uv.h>
#include <stdbool.h>

/* Like raft_uv_tcp_init: 0 or a RAFT_* error. */
int cons__transport_init(struct raft_uv_transport *t, struct uv_loop_s *loop);
/* Like raft_uv_tcp_close: after Raft closed the transport. */
void cons__transport_close(struct raft_uv_transport *t);

/* The libuv I/O backend and its transport, in a block that outlives the
 * cons (io_guard.c).  libraft 0.15 can run its I/O close callback a second
 * time, from a segment writer's late close (fixed upstream in cowsql/raft
 * PR 45: "Don't call uvMaybeFireCloseCb in uvAliveSegmentWriterCloseCb");
 * that second run reads the backend's memory and calls Raft's close
 * callback again.  The guard lets the close callback through once, and a
 * closed backend's memory is kept (listed, so not a leak) instead of
 * freed, so the late run finds it intact and stops at the guard. */
struct cons_io {
    struct raft_io io;                  /* libuv I/O backend */
    struct raft_uv_transport transport; /* TCP transport (transport.c) */
    void (*uv_close)(struct raft_io *io, raft_io_close_cb cb); /* the
                                           backend's own close */
    raft_io_close_cb raft_cb;           /* Raft's close callback */
    bool fired;                         /* raft_cb ran */
    struct cons_io *next;               /* in the list of kept blocks */
};

/* A zeroed block (not yet listed). */
struct cons_io *cons__io_new(void);
/* After raft_uv_init: route io->close through the guard. */
void cons__io_guard(struct cons_io *k);
/* After Raft closed: close the transport's resources, keep the backend's
 * memory for late callbacks (listed until the process exits). */
void cons__io_retire(struct cons_io *k);

#endif
