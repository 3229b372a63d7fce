/* Versioned encoding of Raft commands.  Decoding is the gate every command
 * passes before the state machine touches leveldb: anything it refuses is
 * never applied. */
#include "proto/proto.h"

uint8_t *sh_command_encode(Shoal__Command *cmd, size_t *len)
{
    uint8_t *out;

    cmd->version = SH_COMMAND_VERSION;
    *len = shoal__command__get_packed_size(cmd);
    out = sh_malloc(*len);
    shoal__command__pack(cmd, out);
    return out;
}

int sh_command_decode(const uint8_t *data, size_t len, Shoal__Command **out)
{
    Shoal__Command *cmd;

    *out = NULL;
    cmd = shoal__command__unpack(NULL, len, data);
    if (cmd == NULL)
        return SH_EMALFORMED;
    if (cmd->version != SH_COMMAND_VERSION ||
        cmd->op_case == SHOAL__COMMAND__OP__NOT_SET) {
        shoal__command__free_unpacked(cmd, NULL);
        return SH_EMALFORMED;
    }
    *out = cmd;
    return SH_OK;
}

void sh_command_free(Shoal__Command *cmd)
{
    if (cmd != NULL)
        shoal__command__free_unpacked(cmd, NULL);
}
