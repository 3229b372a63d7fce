/* Raft's TCP transport with TCP_NODELAY (transport.c).  Internal to
 * consensus/. */
#ifndef SHOAL_CONSENSUS_TRANSPORT_H
#define SHOAL_CONSENSUS_TRANSPORT_H

#include <raft/uv.h>

/* Like raft_uv_tcp_init: 0 or a RAFT_* error. */
int cons__transport_init(struct raft_uv_transport *t, struct uv_loop_s *loop);
/* Like raft_uv_tcp_close: after Raft closed the transport. */
void cons__transport_close(struct raft_uv_transport *t);

#endif
