/* api/auth_scope.c: scope grammar, repository patterns and what an
 * identity may do, including the tricks a scope or a name could try. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/auth.h"

static void test_parse(void **state)
{
    struct auth_grant g;

    (void)state;
    assert_int_equal(auth__scope_parse("repository:team/a:pull,push", false, &g),
                     SH_OK);
    assert_string_equal(g.type, "repository");
    assert_string_equal(g.pattern, "team/a");
    assert_int_equal(g.actions, AUTH_PULL | AUTH_PUSH);
    auth__grant_release(&g);

    assert_int_equal(auth__scope_parse("repository:x:*", false, &g), SH_OK);
    assert_int_equal(g.actions, AUTH_ALL);
    auth__grant_release(&g);

    /* Unknown actions are ignored, not an error. */
    assert_int_equal(auth__scope_parse("repository:x:pull,fly", false, &g), SH_OK);
    assert_int_equal(g.actions, AUTH_PULL);
    auth__grant_release(&g);

    assert_int_equal(auth__scope_parse("registry:catalog:*", false, &g), SH_OK);
    assert_int_equal(g.actions, AUTH_ALL);
    auth__grant_release(&g);

    /* Patterns only where allowed. */
    assert_int_equal(auth__scope_parse("repository:team/*:pull", false, &g),
                     SH_EINVAL);
    assert_int_equal(auth__scope_parse("repository:*:pull", false, &g), SH_EINVAL);
    assert_int_equal(auth__scope_parse("repository:team/*:pull", true, &g), SH_OK);
    auth__grant_release(&g);
    assert_int_equal(auth__scope_parse("repository:*:pull", true, &g), SH_OK);
    auth__grant_release(&g);

    /* Malformed and tricky. */
    static const char *bad[] = {
        "", "repository", "repository:", "repository:x", ":x:pull",
        "repository::pull", "repository:../x:pull", "repository:team/../b:pull",
        "repository:Team/a:pull", "repository:/a:pull", "repository:a/:pull",
        "repository:team/**:pull", "repository:te*:pull", "repository:*/a:pull",
        "registry:other:*", "blob:x:pull", "repository:a//b:pull",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (auth__scope_parse(bad[i], true, &g) == SH_OK)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void test_allowed(void **state)
{
    char *scopes[] = {"repository:team/*:pull,push", "repository:solo:pull",
                      "not a scope"};
    struct api_identity *id = auth__identity_new("u", scopes, 3);

    (void)state;
    assert_int_equal(id->n_grants, 2);
    assert_false(id->admin);
    assert_int_equal(auth__allowed(id, NULL, "repository", "team/a"),
                     AUTH_PULL | AUTH_PUSH);
    assert_int_equal(auth__allowed(id, NULL, "repository", "team/a/b"),
                     AUTH_PULL | AUTH_PUSH);
    /* the namespace pattern covers its children, not "team" or "teamx/..." */
    assert_int_equal(auth__allowed(id, NULL, "repository", "team"), 0);
    assert_int_equal(auth__allowed(id, NULL, "repository", "teamx/a"), 0);
    assert_int_equal(auth__allowed(id, NULL, "repository", "solo"), AUTH_PULL);
    assert_int_equal(auth__allowed(id, NULL, "repository", "solo/x"), 0);
    assert_int_equal(auth__allowed(id, NULL, "registry", "catalog"), 0);
    /* Anonymous patterns add pull, for everyone. */
    assert_int_equal(auth__allowed(NULL, "public/*, library/alpine", "repository",
                                   "public/x"),
                     AUTH_PULL);
    assert_int_equal(auth__allowed(NULL, "public/*, library/alpine", "repository",
                                   "library/alpine"),
                     AUTH_PULL);
    assert_int_equal(auth__allowed(NULL, "public/*", "repository", "private/x"),
                     0);
    assert_int_equal(auth__allowed(NULL, "public/*", "registry", "catalog"), 0);
    assert_int_equal(auth__allowed(id, "*", "repository", "other"), AUTH_PULL);
    auth__identity_free(id);

    char *admin[] = {"admin"};
    id = auth__identity_new("root", admin, 1);
    assert_true(id->admin);
    assert_int_equal(auth__allowed(id, NULL, "repository", "any/thing"), AUTH_ALL);
    assert_int_equal(auth__allowed(id, NULL, "registry", "catalog"), AUTH_ALL);
    auth__identity_free(id);
}

static void test_scope_valid(void **state)
{
    char buf[32];

    (void)state;
    assert_int_equal(api_auth_scope_valid("admin"), SH_OK);
    assert_int_equal(api_auth_scope_valid("repository:*:*"), SH_OK);
    assert_int_equal(api_auth_scope_valid("repository:team/*:pull"), SH_OK);
    assert_int_equal(api_auth_scope_valid("registry:catalog:*"), SH_OK);
    assert_int_equal(api_auth_scope_valid("repository:x:"), SH_EINVAL);
    assert_int_equal(api_auth_scope_valid("repository:x:fly"), SH_EINVAL);
    assert_int_equal(api_auth_scope_valid("Admin"), SH_EINVAL);
    assert_string_equal(auth__actions_str(AUTH_ALL, buf), "pull,push,delete");
    assert_string_equal(auth__actions_str(AUTH_PUSH, buf), "push");
    assert_string_equal(auth__actions_str(0, buf), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_scope_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
