/* Unit tests for log_format = json in common/log.c: one parseable object per line, the agent
 * named in its own field, control characters and quotes escaped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "log.h"

/* Run fn with stderr redirected to a temporary file; returns what was written (malloc'd). */
static char *capture(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    long n = ftell(tmp) >= 0 ? (fseek(tmp, 0, SEEK_END), ftell(tmp)) : 0;
    rewind(tmp);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
}

static void emit_two(void)
{
    qlog(QLOG_WARNING, "ima", "agent d432fbb3-0001: File not found in allowlist: /usr/bin/\"odd\"\nname");
    qlog(QLOG_INFO, "verifier", "listening on 127.0.0.1:1");
}

static void test_json_lines(void **state)
{
    (void)state;
    qlog_format f;
    assert_int_equal(qlog_format_parse("JSON", &f), 0);
    assert_int_equal(f, QLOG_FMT_JSON);
    assert_int_equal(qlog_format_parse("xml", &f), -1);
    qlog_set_format(QLOG_FMT_JSON);
    char *out = capture(emit_two);
    qlog_set_format(QLOG_FMT_TEXT);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *a = cJSON_Parse(out), *b = cJSON_Parse(nl + 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(a, "level")->valuestring, "WARNING");
    assert_string_equal(cJSON_GetObjectItem(a, "logger")->valuestring, "quince.ima");
    assert_string_equal(cJSON_GetObjectItem(a, "agent_id")->valuestring, "d432fbb3-0001");
    assert_non_null(strstr(cJSON_GetObjectItem(a, "message")->valuestring, "/usr/bin/\"odd\" name"));
    assert_non_null(cJSON_GetObjectItem(a, "time"));
    assert_null(cJSON_GetObjectItem(b, "agent_id"));
    assert_string_equal(cJSON_GetObjectItem(b, "level")->valuestring, "INFO");
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(out);
}

static void test_text_unchanged(void **state)
{
    (void)state;
    qlog_set_format(QLOG_FMT_TEXT);
    char *out = capture(emit_two);
    assert_non_null(strstr(out, " - quince.ima - WARNING - agent d432fbb3-0001: File not found"));
    assert_null(strchr(out, '{'));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_text_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
