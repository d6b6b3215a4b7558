/* Unit tests for the web page's pure helpers (tenant/webapp_util.c): HTML escaping of hostile
 * text, form fields of urlencoded bodies, and the colour class of each state. The pages and the
 * security checks are exercised in a real browser by tests/integration/test_webapp.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "../../tenant/webapp.h"

static char *escaped(qbuf *b, const char *in)
{
    qbuf_init(b, 0);
    wapp_html(b, in);
    return qbuf_cstr(b);
}

static void test_html_escape(void **state)
{
    (void)state;
    qbuf b;
    assert_string_equal(escaped(&b, "<script>alert(\"x\")</script>&'"),
                        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;");
    qbuf_free(&b);
    assert_string_equal(escaped(&b, "/usr/bin/ls"), "/usr/bin/ls");
    qbuf_free(&b);
    /* Control bytes become visible text, never a line break inside a table cell. */
    assert_string_equal(escaped(&b, "a\nb\x01"), "a\\x0ab\\x01");
    qbuf_free(&b);
    assert_string_equal(escaped(&b, ""), "");
    qbuf_free(&b);
    /* UTF-8 passes unchanged. */
    assert_string_equal(escaped(&b, "caf\xc3\xa9"), "caf\xc3\xa9");
    qbuf_free(&b);
}

static void test_form_fields(void **state)
{
    (void)state;
    const char *body = "csrf=ab12&uuid=My+Agent%2F1&empty=&action=delete&confirm=yes";
    size_t len = strlen(body);
    char out[32];
    assert_true(wapp_form(body, len, "csrf", out, sizeof out));
    assert_string_equal(out, "ab12");
    assert_true(wapp_form(body, len, "uuid", out, sizeof out));
    assert_string_equal(out, "My Agent/1");
    assert_true(wapp_form(body, len, "empty", out, sizeof out));
    assert_string_equal(out, "");
    assert_true(wapp_form(body, len, "confirm", out, sizeof out));
    assert_string_equal(out, "yes");
    assert_false(wapp_form(body, len, "missing", out, sizeof out));
    /* A name that is only a prefix of a field does not match it. */
    assert_false(wapp_form(body, len, "act", out, sizeof out));
    /* Too long for the buffer, and an embedded NUL: refused. */
    char small[4];
    assert_false(wapp_form(body, len, "action", small, sizeof small));
    assert_false(wapp_form("x=a%00b", 7, "x", out, sizeof out));
    /* The body is not NUL-terminated where len ends. */
    assert_true(wapp_form("a=12345", 4, "a", out, sizeof out));
    assert_string_equal(out, "12");
}

static void test_state_class(void **state)
{
    (void)state;
    assert_string_equal(wapp_state_class(3), "st-good");
    assert_string_equal(wapp_state_class(9), "st-bad");
    assert_string_equal(wapp_state_class(7), "st-bad");
    assert_string_equal(wapp_state_class(10), "st-stop");
    assert_string_equal(wapp_state_class(1), "st-wait");
    assert_string_equal(wapp_state_class(-1), "st-none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_form_fields),
        cmocka_unit_test(test_state_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
