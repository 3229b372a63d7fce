/* The close guard of the libuv I/O backend (see transport.h, struct
 * cons_io): Raft's I/O close callback runs at most once, and a closed
 * backend's memory stays valid for libraft's late callbacks.  The kept
 * blocks are a few KiB per closed cons, which happens once per process
 * outside tests. */
#include <stdlib.h>
#include <uv.h>

#include "proto/proto.h"
#include "transport.h"

/* Every retired block, reachable from here so that leak checkers do not
 * count them; touched on the loop thread only. */
static struct cons_io *kept;

static struct cons_io *of_io(struct raft_io *io)
{
    return (struct cons_io *)((char *)io - offsetof(struct cons_io, io));
}

/* The backend finished closing (possibly for the second time). */
static void io_closed(struct raft_io *io)
{
    struct cons_io *k = of_io(io);

    if (k->fired) {
        SH_INFO("raft i/o close callback ran a second time (libraft "
                "0.15 segment writer): ignored");
        return;
    }
    k->fired = true;
    k->raft_cb(io);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct cons_io *k = of_io(io);

    k->raft_cb = cb;
    k->uv_close(io, io_closed);
}

struct cons_io *cons__io_new(void)
{
    return sh_calloc(1, sizeof(struct cons_io));
}

void cons__io_guard(struct cons_io *k)
{
    k->uv_close = k->io.close;
    k->io.close = io_close;
}

void cons__io_retire(struct cons_io *k)
{
    cons__transport_close(&k->transport);
    k->next = kept;
    kept = k;
}
