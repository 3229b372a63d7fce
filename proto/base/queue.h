/* Intrusive circular doubly linked queue (raft src/queue.h).
 * An empty queue points at itself; elements embed a `sh_queue` field. */
#ifndef SHOAL_PROTO_BASE_QUEUE_H
#define SHOAL_PROTO_BASE_QUEUE_H

#include <stddef.h>

typedef void *sh_queue[2];

#define SH_QUEUE_NEXT(q) (*(sh_queue **)&((*(q))[0]))
#define SH_QUEUE_PREV(q) (*(sh_queue **)&((*(q))[1]))

#define SH_QUEUE_INIT(q)       \
    do {                       \
        SH_QUEUE_NEXT(q) = (q); \
        SH_QUEUE_PREV(q) = (q); \
    } while (0)

#define SH_QUEUE_IS_EMPTY(q) ((const sh_queue *)(q) == SH_QUEUE_NEXT(q))
#define SH_QUEUE_HEAD(q) (SH_QUEUE_NEXT(q))

#define SH_QUEUE_PUSH(q, e)                   \
    do {                                      \
        SH_QUEUE_NEXT(e) = (q);               \
        SH_QUEUE_PREV(e) = SH_QUEUE_PREV(q);  \
        SH_QUEUE_NEXT(SH_QUEUE_PREV(e)) = (e); \
        SH_QUEUE_PREV(q) = (e);               \
    } while (0)

#define SH_QUEUE_REMOVE(e)                             \
    do {                                               \
        SH_QUEUE_NEXT(SH_QUEUE_PREV(e)) = SH_QUEUE_NEXT(e); \
        SH_QUEUE_PREV(SH_QUEUE_NEXT(e)) = SH_QUEUE_PREV(e); \
    } while (0)

#define SH_QUEUE_DATA(e, type, field) \
    ((type *)(void *)((char *)(e)-offsetof(type, field)))

#define SH_QUEUE_FOREACH(q, h) \
    for ((q) = SH_QUEUE_NEXT(h); (q) != (h); (q) = SH_QUEUE_NEXT(q))

#endif
