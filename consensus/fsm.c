/* FSM dispatch (dqlite src/fsm.c): decode the versioned command, hand it
 * to its applier, write the resulting batch atomically.  An undecodable
 * command or unknown type/version is refused with SH_EMALFORMED and changes
 * nothing. */
#include "fsm.h"

int fsm_apply(struct meta *m, const uint8_t *buf, size_t len, bool sync)
{
    Shoal__Command *cmd;
    struct meta_batch *b;
    int rv;

    rv = sh_command_decode(buf, len, &cmd);
    if (rv != SH_OK)
        return rv;
    b = meta_batch_new();
    switch (cmd->op_case) {
        case SHOAL__COMMAND__OP_PUT_MANIFEST:
            rv = fsm__apply_put_manifest(m, b, cmd->put_manifest);
            break;
        case SHOAL__COMMAND__OP_DELETE_MANIFEST:
            rv = fsm__apply_delete_manifest(m, b, cmd->delete_manifest);
            break;
        case SHOAL__COMMAND__OP_DELETE_TAG:
            rv = fsm__apply_delete_tag(m, b, cmd->delete_tag);
            break;
        case SHOAL__COMMAND__OP_BLOB_COMMIT:
            rv = fsm__apply_blob_commit(m, b, cmd->blob_commit);
            break;
        case SHOAL__COMMAND__OP_BLOB_LINK:
            rv = fsm__apply_blob_link(m, b, cmd->blob_link);
            break;
        case SHOAL__COMMAND__OP_BLOB_UNLINK:
            rv = fsm__apply_blob_unlink(m, b, cmd->blob_unlink);
            break;
        default:
            rv = SH_EMALFORMED;
    }
    if (rv == SH_OK)
        rv = meta_batch_write(m, b, sync);
    meta_batch_free(b);
    sh_command_free(cmd);
    return rv;
}
