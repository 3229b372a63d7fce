/* proto/envelope.c: the versioned command encoding.  Every op of
 * command.proto survives a round trip; decoding refuses garbage, another
 * version, and a command without an op, leaving *out NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

#define DIGEST_A \
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
#define DIGEST_B \
    "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"

/* A distinct non-NULL pointer the decoder must overwrite. */
static Shoal__Command sentinel;

/* Encode, check the version was stamped on the caller's message, decode,
 * and check that encoding the decoded message gives the same bytes. */
static Shoal__Command *round_trip(Shoal__Command *cmd)
{
    Shoal__Command *out = &sentinel;
    uint8_t *buf, *again;
    size_t len, len2;

    cmd->version = 0;
    buf = sh_command_encode(cmd, &len);
    assert_non_null(buf);
    assert_true(len > 0);
    assert_int_equal(cmd->version, SH_COMMAND_VERSION);
    assert_int_equal(sh_command_decode(buf, len, &out), SH_OK);
    assert_non_null(out);
    assert_ptr_not_equal(out, &sentinel);
    assert_int_equal(out->version, SH_COMMAND_VERSION);
    assert_int_equal(out->op_case, cmd->op_case);

    again = sh_command_encode(out, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    free(again);
    free(buf);
    return out;
}

static void test_put_manifest(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__PutManifest op = SHOAL__PUT_MANIFEST__INIT;
    Shoal__ManifestRecord rec = SHOAL__MANIFEST_RECORD__INIT;
    char *blobs[] = {(char *)DIGEST_A, (char *)DIGEST_B};
    char *children[] = {(char *)DIGEST_B};
    static const char content[] = "{\"schemaVersion\":2}\0tail";
    static const char desc[] = "{\"mediaType\":\"x\"}";
    Shoal__Command *out;

    (void)state;
    rec.version = SH_RECORD_VERSION;
    rec.media_type = (char *)"application/vnd.oci.image.manifest.v1+json";
    rec.content.data = (uint8_t *)content;
    rec.content.len = sizeof content; /* embedded NUL kept */
    rec.subject = (char *)DIGEST_B;
    rec.artifact_type = (char *)"application/x-sig";
    rec.n_blob_refs = 2;
    rec.blob_refs = blobs;
    rec.n_manifest_refs = 1;
    rec.manifest_refs = children;
    rec.created_unix = 1700000000;
    op.repo = (char *)"library/alpine";
    op.digest = (char *)DIGEST_A;
    op.record = &rec;
    op.tag = (char *)"3.19";
    op.referrer_descriptor.data = (uint8_t *)desc;
    op.referrer_descriptor.len = strlen(desc);
    cmd.op_case = SHOAL__COMMAND__OP_PUT_MANIFEST;
    cmd.put_manifest = &op;

    out = round_trip(&cmd);
    assert_int_equal(out->op_case, SHOAL__COMMAND__OP_PUT_MANIFEST);
    assert_string_equal(out->put_manifest->repo, "library/alpine");
    assert_string_equal(out->put_manifest->digest, DIGEST_A);
    assert_string_equal(out->put_manifest->tag, "3.19");
    assert_int_equal(out->put_manifest->referrer_descriptor.len, strlen(desc));
    assert_memory_equal(out->put_manifest->referrer_descriptor.data, desc,
                        strlen(desc));
    assert_non_null(out->put_manifest->record);
    {
        const Shoal__ManifestRecord *r = out->put_manifest->record;
        assert_int_equal(r->version, SH_RECORD_VERSION);
        assert_string_equal(r->media_type,
                            "application/vnd.oci.image.manifest.v1+json");
        assert_int_equal(r->content.len, sizeof content);
        assert_memory_equal(r->content.data, content, sizeof content);
        assert_string_equal(r->subject, DIGEST_B);
        assert_string_equal(r->artifact_type, "application/x-sig");
        assert_int_equal(r->n_blob_refs, 2);
        assert_string_equal(r->blob_refs[0], DIGEST_A);
        assert_string_equal(r->blob_refs[1], DIGEST_B);
        assert_int_equal(r->n_manifest_refs, 1);
        assert_string_equal(r->manifest_refs[0], DIGEST_B);
        assert_int_equal(r->created_unix, 1700000000);
    }
    sh_command_free(out);
}

static void test_put_manifest_minimal(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__PutManifest op = SHOAL__PUT_MANIFEST__INIT;
    Shoal__Command *out;

    (void)state;
    /* Every field at its default: the op case alone survives. */
    cmd.op_case = SHOAL__COMMAND__OP_PUT_MANIFEST;
    cmd.put_manifest = &op;
    out = round_trip(&cmd);
    assert_non_null(out->put_manifest);
    assert_string_equal(out->put_manifest->repo, "");
    assert_string_equal(out->put_manifest->tag, "");
    assert_null(out->put_manifest->record);
    assert_int_equal(out->put_manifest->referrer_descriptor.len, 0);
    sh_command_free(out);
}

static void test_delete_manifest(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__DeleteManifest op = SHOAL__DELETE_MANIFEST__INIT;
    Shoal__Command *out;

    (void)state;
    op.repo = (char *)"a/b";
    op.digest = (char *)DIGEST_A;
    cmd.op_case = SHOAL__COMMAND__OP_DELETE_MANIFEST;
    cmd.delete_manifest = &op;
    out = round_trip(&cmd);
    assert_string_equal(out->delete_manifest->repo, "a/b");
    assert_string_equal(out->delete_manifest->digest, DIGEST_A);
    sh_command_free(out);
}

static void test_delete_tag(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__DeleteTag op = SHOAL__DELETE_TAG__INIT;
    Shoal__Command *out;

    (void)state;
    op.repo = (char *)"repo";
    op.tag = (char *)"v1.0-rc.1";
    cmd.op_case = SHOAL__COMMAND__OP_DELETE_TAG;
    cmd.delete_tag = &op;
    out = round_trip(&cmd);
    assert_string_equal(out->delete_tag->repo, "repo");
    assert_string_equal(out->delete_tag->tag, "v1.0-rc.1");
    sh_command_free(out);
}

static void test_blob_commit(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobCommit op = SHOAL__BLOB_COMMIT__INIT;
    Shoal__BlobRecord rec = SHOAL__BLOB_RECORD__INIT;
    Shoal__Layout layout = SHOAL__LAYOUT__INIT;
    Shoal__ShardPlacement p0 = SHOAL__SHARD_PLACEMENT__INIT;
    Shoal__ShardPlacement p1 = SHOAL__SHARD_PLACEMENT__INIT;
    Shoal__ShardPlacement *placement[] = {&p0, &p1};
    Shoal__Command *out;
    const Shoal__BlobRecord *r;

    (void)state;
    layout.k = 4;
    layout.m = 2;
    layout.shard_size = 1 << 20;
    p0.index = 0;
    p0.node_id = 11;
    p1.index = 5;
    p1.node_id = UINT64_MAX;
    rec.version = SH_RECORD_VERSION;
    rec.digest = (char *)DIGEST_B;
    rec.size = (uint64_t)5 << 32;
    rec.layout = &layout;
    rec.n_placement = 2;
    rec.placement = placement;
    rec.state = SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE;
    rec.created_unix = 42;
    op.repo = (char *)"r";
    op.record = &rec;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_COMMIT;
    cmd.blob_commit = &op;

    out = round_trip(&cmd);
    assert_string_equal(out->blob_commit->repo, "r");
    r = out->blob_commit->record;
    assert_non_null(r);
    assert_int_equal(r->version, SH_RECORD_VERSION);
    assert_string_equal(r->digest, DIGEST_B);
    assert_int_equal(r->size, (uint64_t)5 << 32);
    assert_non_null(r->layout);
    assert_int_equal(r->layout->k, 4);
    assert_int_equal(r->layout->m, 2);
    assert_int_equal(r->layout->shard_size, 1 << 20);
    assert_int_equal(r->n_placement, 2);
    assert_int_equal(r->placement[0]->index, 0);
    assert_int_equal(r->placement[0]->node_id, 11);
    assert_int_equal(r->placement[1]->index, 5);
    assert_int_equal(r->placement[1]->node_id, UINT64_MAX);
    assert_int_equal(r->state, SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE);
    assert_int_equal(r->created_unix, 42);
    sh_command_free(out);
}

static void test_blob_link_unlink(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobLink link = SHOAL__BLOB_LINK__INIT;
    Shoal__BlobUnlink unlink = SHOAL__BLOB_UNLINK__INIT;
    Shoal__Command *out;

    (void)state;
    link.repo = (char *)"dst";
    link.digest = (char *)DIGEST_A;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_LINK;
    cmd.blob_link = &link;
    out = round_trip(&cmd);
    assert_string_equal(out->blob_link->repo, "dst");
    assert_string_equal(out->blob_link->digest, DIGEST_A);
    sh_command_free(out);

    unlink.repo = (char *)"src";
    unlink.digest = (char *)DIGEST_B;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_UNLINK;
    cmd.blob_unlink = &unlink;
    out = round_trip(&cmd);
    assert_string_equal(out->blob_unlink->repo, "src");
    assert_string_equal(out->blob_unlink->digest, DIGEST_B);
    sh_command_free(out);
}

static void test_member_put(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__MemberPut op = SHOAL__MEMBER_PUT__INIT;
    Shoal__MemberRecord rec = SHOAL__MEMBER_RECORD__INIT;
    Shoal__Command *out;

    (void)state;
    rec.version = SH_RECORD_VERSION;
    rec.id = 3;
    rec.raft_address = (char *)"127.0.0.1:6003";
    rec.url = (char *)"http://127.0.0.1:5003";
    rec.zone = (char *)"eu-1";
    rec.state = SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE;
    op.record = &rec;
    cmd.op_case = SHOAL__COMMAND__OP_MEMBER_PUT;
    cmd.member_put = &op;
    out = round_trip(&cmd);
    assert_int_equal(out->member_put->record->id, 3);
    assert_string_equal(out->member_put->record->raft_address, "127.0.0.1:6003");
    assert_string_equal(out->member_put->record->url, "http://127.0.0.1:5003");
    assert_string_equal(out->member_put->record->zone, "eu-1");
    assert_int_equal(out->member_put->record->state,
                     SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE);
    sh_command_free(out);
}

static void test_blob_place(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobPlace op = SHOAL__BLOB_PLACE__INIT;
    Shoal__Command *out;

    (void)state;
    op.digest = (char *)DIGEST_B;
    op.index = 5;
    op.from_node = 2;
    op.to_node = 9;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_PLACE;
    cmd.blob_place = &op;
    out = round_trip(&cmd);
    assert_string_equal(out->blob_place->digest, DIGEST_B);
    assert_int_equal(out->blob_place->index, 5);
    assert_int_equal(out->blob_place->from_node, 2);
    assert_int_equal(out->blob_place->to_node, 9);
    sh_command_free(out);
}

static void test_blob_drop(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobDrop op = SHOAL__BLOB_DROP__INIT;
    Shoal__Command *out;

    (void)state;
    op.digest = (char *)DIGEST_A;
    op.before_unix = 1700000000;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_DROP;
    cmd.blob_drop = &op;
    out = round_trip(&cmd);
    assert_string_equal(out->blob_drop->digest, DIGEST_A);
    assert_int_equal(out->blob_drop->before_unix, 1700000000);
    sh_command_free(out);
}

static void test_account_put(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__AccountPut op = SHOAL__ACCOUNT_PUT__INIT;
    Shoal__AccountRecord rec = SHOAL__ACCOUNT_RECORD__INIT;
    char *scopes[] = {"repository:team/*:pull,push", "registry:catalog:*"};
    Shoal__Command *out;

    (void)state;
    rec.version = 1;
    rec.name = "ci";
    rec.kind = SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN;
    rec.password_hash = "$y$j9T$salt$hash";
    rec.scopes = scopes;
    rec.n_scopes = 2;
    rec.created_unix = 100;
    rec.expires_unix = 200;
    rec.revoked = true;
    rec.last_used_unix = 150;
    op.record = &rec;
    op.create_only = true;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_PUT;
    cmd.account_put = &op;
    out = round_trip(&cmd);
    assert_true(out->account_put->create_only);
    assert_string_equal(out->account_put->record->name, "ci");
    assert_int_equal(out->account_put->record->kind,
                     SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN);
    assert_string_equal(out->account_put->record->password_hash,
                        "$y$j9T$salt$hash");
    assert_int_equal(out->account_put->record->n_scopes, 2);
    assert_string_equal(out->account_put->record->scopes[1],
                        "registry:catalog:*");
    assert_int_equal(out->account_put->record->expires_unix, 200);
    assert_true(out->account_put->record->revoked);
    assert_int_equal(out->account_put->record->last_used_unix, 150);
    sh_command_free(out);
}

static void test_account_delete_used(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__AccountDelete del = SHOAL__ACCOUNT_DELETE__INIT;
    Shoal__AccountUsed used = SHOAL__ACCOUNT_USED__INIT;
    Shoal__Command *out;

    (void)state;
    del.name = "alice";
    del.kind = SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_DELETE;
    cmd.account_delete = &del;
    out = round_trip(&cmd);
    assert_string_equal(out->account_delete->name, "alice");
    assert_int_equal(out->account_delete->kind,
                     SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER);
    sh_command_free(out);

    used.name = "alice";
    used.at_unix = 1234;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_USED;
    cmd.account_used = &used;
    out = round_trip(&cmd);
    assert_string_equal(out->account_used->name, "alice");
    assert_int_equal(out->account_used->at_unix, 1234);
    sh_command_free(out);
}

static void test_signing_key_put(void **state)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__SigningKeyPut op = SHOAL__SIGNING_KEY_PUT__INIT;
    Shoal__SigningKeyRecord rec = SHOAL__SIGNING_KEY_RECORD__INIT;
    char *retire[] = {"0123456789abcdef0123456789abcdef"};
    Shoal__Command *out;

    (void)state;
    rec.version = 1;
    rec.kid = "fedcba9876543210fedcba9876543210";
    rec.private_pem = "-----BEGIN PRIVATE KEY-----\n...";
    rec.created_unix = 7;
    op.record = &rec;
    op.retire = retire;
    op.n_retire = 1;
    cmd.op_case = SHOAL__COMMAND__OP_SIGNING_KEY_PUT;
    cmd.signing_key_put = &op;
    out = round_trip(&cmd);
    assert_string_equal(out->signing_key_put->record->kid, rec.kid);
    assert_string_equal(out->signing_key_put->record->private_pem,
                        rec.private_pem);
    assert_int_equal(out->signing_key_put->record->created_unix, 7);
    assert_int_equal(out->signing_key_put->n_retire, 1);
    assert_string_equal(out->signing_key_put->retire[0], retire[0]);
    sh_command_free(out);
}

/* Every op case of the generated oneof is covered above: the list ends at
 * BlobDrop.  A new op added to command.proto fails here until it gets a
 * round-trip test. */
static void test_every_op_covered(void **state)
{
    const ProtobufCFieldDescriptor *f;
    unsigned ops = 0;

    (void)state;
    for (unsigned i = 0; i < shoal__command__descriptor.n_fields; i++) {
        f = &shoal__command__descriptor.fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            ops++;
    }
    assert_int_equal(ops, 13);
    assert_int_equal(SHOAL__COMMAND__OP_BLOB_DROP, 22);
}

/* Decoding must fail with SH_EMALFORMED and leave *out NULL. */
static void assert_refused(const uint8_t *data, size_t len)
{
    Shoal__Command *out = &sentinel;

    assert_int_equal(sh_command_decode(data, len, &out), SH_EMALFORMED);
    assert_null(out);
}

static void test_decode_garbage(void **state)
{
    static const uint8_t overlong_varint[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t field_zero[] = {0x00, 0x01};
    /* Field 10 (put_manifest), length 50, but only 2 bytes follow. */
    static const uint8_t short_body[] = {0x08, 0x01, 0x52, 0x32, 0x0a, 0x00};
    /* Wire type 7 does not exist. */
    static const uint8_t bad_wire[] = {0x0f, 0x01};
    static const char text[] = "GET /v2/ HTTP/1.1\r\n\r\n";
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__DeleteTag op = SHOAL__DELETE_TAG__INIT;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_refused(overlong_varint, sizeof overlong_varint);
    assert_refused(field_zero, sizeof field_zero);
    assert_refused(short_body, sizeof short_body);
    assert_refused(bad_wire, sizeof bad_wire);
    assert_refused((const uint8_t *)text, strlen(text));

    /* Every strict prefix of a valid command is refused. */
    op.repo = (char *)"repo";
    op.tag = (char *)"latest";
    cmd.op_case = SHOAL__COMMAND__OP_DELETE_TAG;
    cmd.delete_tag = &op;
    buf = sh_command_encode(&cmd, &len);
    for (size_t n = 0; n < len; n++)
        assert_refused(buf, n);
    free(buf);
}

/* Pack without sh_command_encode, so the version is whatever we set. */
static uint8_t *pack_raw(const Shoal__Command *cmd, size_t *len)
{
    uint8_t *buf;

    *len = shoal__command__get_packed_size(cmd);
    buf = sh_malloc(*len);
    assert_int_equal(shoal__command__pack(cmd, buf), *len);
    return buf;
}

static void test_decode_wrong_version(void **state)
{
    static const uint32_t versions[] = {0, SH_COMMAND_VERSION + 1, 255,
                                        UINT32_MAX};
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__DeleteTag op = SHOAL__DELETE_TAG__INIT;
    Shoal__Command *out = &sentinel;
    uint8_t *buf;
    size_t len;

    (void)state;
    op.repo = (char *)"repo";
    op.tag = (char *)"latest";
    cmd.op_case = SHOAL__COMMAND__OP_DELETE_TAG;
    cmd.delete_tag = &op;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        cmd.version = versions[i];
        buf = pack_raw(&cmd, &len);
        assert_refused(buf, len);
        free(buf);
    }
    /* The same bytes with the right version are accepted. */
    cmd.version = SH_COMMAND_VERSION;
    buf = pack_raw(&cmd, &len);
    assert_int_equal(sh_command_decode(buf, len, &out), SH_OK);
    assert_non_null(out);
    sh_command_free(out);
    free(buf);
}

static void test_decode_no_op(void **state)
{
    /* version = 1, then field 99 (an op from the future), empty. */
    static const uint8_t future_op[] = {0x08, 0x01, 0x9a, 0x06, 0x00};
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    uint8_t *buf;
    size_t len;

    (void)state;
    /* Through the encoder: the version is stamped, the op is missing. */
    buf = sh_command_encode(&cmd, &len);
    assert_int_equal(cmd.version, SH_COMMAND_VERSION);
    assert_refused(buf, len);
    free(buf);
    /* An unknown op number decodes as "no op". */
    assert_refused(future_op, sizeof future_op);
    /* Zero bytes: a valid empty message, version 0, no op. */
    assert_refused((const uint8_t *)"", 0);

    sh_command_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_manifest),
        cmocka_unit_test(test_put_manifest_minimal),
        cmocka_unit_test(test_delete_manifest),
        cmocka_unit_test(test_delete_tag),
        cmocka_unit_test(test_blob_commit),
        cmocka_unit_test(test_blob_link_unlink),
        cmocka_unit_test(test_blob_place),
        cmocka_unit_test(test_blob_drop),
        cmocka_unit_test(test_account_put),
        cmocka_unit_test(test_account_delete_used),
        cmocka_unit_test(test_signing_key_put),
        cmocka_unit_test(test_member_put),
        cmocka_unit_test(test_every_op_covered),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_wrong_version),
        cmocka_unit_test(test_decode_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
