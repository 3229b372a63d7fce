/* Error codes shared by every module and carried by the peer protocol.
 *
 * Functions return 0 (SH_OK) or a positive SH_E* code.  The human detail
 * travels next to the code, in a caller-provided message buffer, wrapped with
 * context on the way up (sh_errmsg_wrapf).  The table below is the only place
 * codes and their text are defined. */
#ifndef SHOAL_PROTO_BASE_ERR_H
#define SHOAL_PROTO_BASE_ERR_H

#include <stddef.h>

#define SH_ERR_MAP(X)                                         \
    X(SH_OK, 0, "ok")                                         \
    X(SH_ENOMEM, 1, "out of memory")                          \
    X(SH_EINVAL, 2, "invalid argument")                       \
    X(SH_EIO, 3, "i/o error")                                 \
    X(SH_ENOTFOUND, 4, "not found")                           \
    X(SH_EEXIST, 5, "already exists")                         \
    X(SH_EMALFORMED, 6, "malformed data")                     \
    X(SH_ECORRUPT, 7, "checksum mismatch")                    \
    X(SH_ECANCELED, 8, "operation canceled")                  \
    X(SH_ETOOBIG, 9, "too big")                               \
    X(SH_ENOSPC, 10, "no space left")                         \
    X(SH_EBUSY, 11, "resource busy")                          \
    X(SH_EDIGEST, 12, "digest mismatch")                      \
    X(SH_ERANGE, 13, "range not satisfiable")                 \
    X(SH_EUNSUPPORTED, 14, "unsupported")                     \
    X(SH_ENOTLEADER, 15, "not the leader")                    \
    X(SH_EUNAVAILABLE, 16, "service unavailable")             \
    X(SH_ESHUTDOWN, 17, "shutting down")

enum sh_err {
#define SH_ERR_ENUM(name, value, text) name = value,
    SH_ERR_MAP(SH_ERR_ENUM)
#undef SH_ERR_ENUM
};

/* Static text for a code; never NULL. */
const char *sh_strerror(int code);

/* Size of message buffers that carry error detail next to a code. */
#define SH_ERRMSG_SIZE 256

/* Format into msg (SH_ERRMSG_SIZE bytes). */
void sh_errmsg_printf(char *msg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix msg with context: "<context>: <old msg>". */
void sh_errmsg_wrapf(char *msg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
