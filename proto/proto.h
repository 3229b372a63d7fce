/* proto: the vocabulary every module shares.
 *
 * Generated protobuf-c types for Raft commands and stored records, the
 * format versions they carry, and the base code (errors, logging, asserts,
 * buffers, memory).  Depends on libc and protobuf-c only. */
#ifndef SHOAL_PROTO_H
#define SHOAL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "proto/base/assert.h"
#include "proto/base/buf.h"
#include "proto/base/err.h"
#include "proto/base/log.h"
#include "proto/base/mem.h"
#include "proto/base/queue.h"
#include "proto/command.pb-c.h"
#include "proto/snapshot.pb-c.h"

/* Format versions of what reaches disk or the wire (STYLE habit 14). */
#define SH_COMMAND_VERSION 1
#define SH_RECORD_VERSION 1

/* Serialise a command, stamping its version.  Returns a malloc'ed buffer
 * the caller owns. */
uint8_t *sh_command_encode(Shoal__Command *cmd, size_t *len);

/* Decode and check a command.  On success *out is owned by the caller and
 * freed with sh_command_free.  An unknown type or version gives
 * SH_EMALFORMED and *out stays NULL. */
int sh_command_decode(const uint8_t *data, size_t len, Shoal__Command **out);
void sh_command_free(Shoal__Command *cmd);

#endif
