/*
 * test_routes.c - the API route table (api/route_table.c): yund's table has
 * no two colliding rows, colliding and malformed tables are refused,
 * matching prefers literal segments, fills {params}, tells 404 from 405
 * (with the Allow set), HEAD answers on GET rows; and the pure body checks
 * (api/body_*.c) give the 400s the API promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/http.h>
#include <jansson.h>
#include <string.h>

#include "api/bodies.h"
#include "api/routes.h"

static void nop(struct route_ctx *c) {}

static void test_yund_table_has_no_collisions(void **state)
{
    char err[256] = "";
    size_t n = 0;
    const struct route *t = route_table(&n, err, sizeof(err));
    assert_non_null(t);
    assert_true(n >= 40);
    assert_int_equal(route_table_check(t, n, err, sizeof(err)), 0);
    /* every row's body check belongs to a row that takes a body */
    for (size_t i = 0; i < n; i++)
        if (t[i].check_body)
            assert_true(t[i].flags & ROUTE_BODY);
}

static void test_collisions_are_refused(void **state)
{
    char err[256] = "";
    const struct route same_shape[] = {
        {EVHTTP_REQ_GET, "/v1/x/{a}", nop, 0, "one", NULL},
        {EVHTTP_REQ_GET, "/v1/x/{b}", nop, 0, "two", NULL},
    };
    assert_int_equal(route_table_check(same_shape, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "collide"));
    const struct route same[] = {
        {EVHTTP_REQ_POST, "/v1/x", nop, 0, "one", NULL},
        {EVHTTP_REQ_POST, "/v1//x", nop, 0, "two", NULL},
    };
    assert_int_equal(route_table_check(same, 2, err, sizeof(err)), -1);
    /* other methods, or a literal against a parameter, do not collide */
    const struct route fine[] = {
        {EVHTTP_REQ_GET, "/v1/x/{a}", nop, 0, "one", NULL},
        {EVHTTP_REQ_DELETE, "/v1/x/{a}", nop, 0, "two", NULL},
        {EVHTTP_REQ_GET, "/v1/x/build", nop, 0, "three", NULL},
        {EVHTTP_REQ_GET, "/v1/x/{a}/y", nop, 0, "four", NULL},
    };
    assert_int_equal(route_table_check(fine, 4, err, sizeof(err)), 0);
}

static void test_malformed_rows_are_refused(void **state)
{
    char err[256];
    const struct route bad[][1] = {
        {{EVHTTP_REQ_GET, "v1/x", nop, 0, "no leading slash", NULL}},
        {{EVHTTP_REQ_GET, "/v1/{x", nop, 0, "open brace", NULL}},
        {{EVHTTP_REQ_GET, "/v1/{}", nop, 0, "empty name", NULL}},
        {{EVHTTP_REQ_GET, "/v1/a{x}", nop, 0, "half a parameter", NULL}},
        {{EVHTTP_REQ_GET, "/v1/x", NULL, 0, "no handler", NULL}},
        {{EVHTTP_REQ_GET, "/v1/x", nop, 0, "", NULL}},
        {{EVHTTP_REQ_GET, "/v1/x", nop, 0, "a check without ROUTE_BODY", check_vm_create}},
        {{0, "/v1/x", nop, 0, "no method", NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(route_table_check(bad[i], 1, err, sizeof(err)), -1);
}

static const struct route table[] = {
    {EVHTTP_REQ_GET, "/v1/images", nop, 0, "list", NULL},
    {EVHTTP_REQ_POST, "/v1/images/build", nop, 0, "build", NULL},
    {EVHTTP_REQ_GET, "/v1/images/{name}", nop, 0, "show", NULL},
    {EVHTTP_REQ_DELETE, "/v1/images/{name}", nop, 0, "delete", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/snapshots/{snapshot}/actions/revert", nop, 0, "revert", NULL},
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

static bool match(int method, const char *path, struct route_match *m)
{
    static char buf[256];
    const char *segs[ROUTE_MAX_SEGS];
    snprintf(buf, sizeof(buf), "%s", path);
    int n = route_split(buf, segs, ROUTE_MAX_SEGS);
    assert_true(n >= 0);
    return route_match(table, NTABLE, method, segs, n, m);
}

static const char *param(const struct route_match *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (m->param_len[i] == strlen(name) && !memcmp(m->param_name[i], name, m->param_len[i]))
            return m->param_val[i];
    return NULL;
}

static void test_literals_win_and_params_fill(void **state)
{
    struct route_match m;
    assert_true(match(EVHTTP_REQ_POST, "/v1/images/build", &m));
    assert_ptr_equal(m.route, &table[1]);
    assert_int_equal(m.nparams, 0);
    /* GET has no literal row: the parameter row takes "build" as a name */
    assert_true(match(EVHTTP_REQ_GET, "/v1/images/build", &m));
    assert_ptr_equal(m.route, &table[2]);
    assert_string_equal(param(&m, "name"), "build");
    assert_true(match(EVHTTP_REQ_POST, "/v1/vms/web/snapshots/s1/actions/revert", &m));
    assert_ptr_equal(m.route, &table[4]);
    assert_string_equal(param(&m, "name"), "web");
    assert_string_equal(param(&m, "snapshot"), "s1");
    assert_null(param(&m, "nam"));
    /* empty segments are skipped, as the old dispatch did */
    assert_true(match(EVHTTP_REQ_GET, "//v1/images/", &m));
    assert_ptr_equal(m.route, &table[0]);
}

static void test_404_405_and_head(void **state)
{
    struct route_match m;
    char allow[64];
    assert_false(match(EVHTTP_REQ_GET, "/v1/nothing", &m));
    assert_false(match(EVHTTP_REQ_GET, "/v1/images/a/b", &m));
    assert_false(match(EVHTTP_REQ_GET, "/v1", &m));
    /* the path is known, the method is not: 405 with every matching row's method */
    assert_true(match(EVHTTP_REQ_PUT, "/v1/images/x", &m));
    assert_null(m.route);
    route_allow_header(m.allow, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, DELETE");
    assert_true(match(EVHTTP_REQ_PUT, "/v1/images/build", &m));
    route_allow_header(m.allow, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, POST, DELETE");
    assert_true(match(EVHTTP_REQ_HEAD, "/v1/images", &m));
    assert_ptr_equal(m.route, &table[0]);
}

static void test_split_limits(void **state)
{
    char buf[256];
    const char *segs[ROUTE_MAX_SEGS];
    snprintf(buf, sizeof(buf), "/a/b/c/d/e/f/g/h/i/j");
    assert_int_equal(route_split(buf, segs, ROUTE_MAX_SEGS), 10);
    snprintf(buf, sizeof(buf), "/a/b/c/d/e/f/g/h/i/j/k");
    assert_int_equal(route_split(buf, segs, ROUTE_MAX_SEGS), -1);
}

/* Runs check on the JSON text (NULL: no body); returns the message or "". */
static const char *check(int (*fn)(json_t *, struct yerr *), const char *text)
{
    static struct yerr err;
    json_t *b = text ? json_loads(text, 0, NULL) : NULL;
    if (text)
        assert_non_null(b);
    memset(&err, 0, sizeof(err));
    int rc = fn(b, &err);
    json_decref(b);
    if (rc == 0)
        return "";
    assert_int_equal(yerr_status(&err), 400);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    return err.message;
}

static void test_body_checks(void **state)
{
    assert_string_equal(check(check_vm_create, NULL), "request body with name and image required");
    assert_string_equal(check(check_vm_create, "{\"name\":\"a\",\"image\":\"tiny\"}"), "");
    assert_string_equal(check(check_vm_create, "{\"name\":\"a\",\"image\":\"t\",\"colour\":1}"),
                        "unknown field 'colour'");
    assert_string_equal(check(check_vm_create, "{\"name\":\"a\",\"image\":\"t\",\"cpus\":\"2\"}"),
                        "cpus must be an integer");
    assert_string_equal(
        check(check_vm_create, "{\"name\":\"a\",\"image\":\"t\",\"ssh_keys\":[\"a\\nb\"]}"),
        "ssh_keys must be an array of one-line strings");
    assert_string_equal(check(check_vm_create, "{\"name\":\"a\",\"image\":\"t\",\"memory\":1}"),
                        "memory must be a whole number of MiB");
    assert_string_equal(check(check_snapshot_create, "{}"), "name (a string) is required");
    assert_string_equal(check(check_vm_exec, NULL), "body {\"argv\": [...]} required");
    assert_string_equal(check(check_vm_exec, "{\"argv\":[]}"),
                        "argv must be an array of 1..256 strings");
    assert_string_equal(check(check_vm_exec, "{\"argv\":[\"ls\"],\"timeout\":0}"),
                        "timeout must be 1..3600 seconds");
    assert_string_equal(check(check_vm_exec, "{\"argv\":[\"ls\"],\"input\":\"x\"}"), "");
    assert_string_equal(check(check_volume_create, "{\"name\":\"v\",\"source\":\"/f\",\"size\":1}"),
                        "source must be a file path, and an import takes no size");
    assert_string_equal(check(check_volume_create, "{\"name\":\"v\"}"),
                        "size must be a size such as \"4G\"");
    assert_string_equal(check(check_volume_create, "{\"name\":\"v\",\"size\":\"1M\"}"), "");
    assert_string_equal(check(check_volume_clone, "{\"name\":\"c\",\"full\":1}"),
                        "full must be true or false");
    assert_string_equal(check(check_volume_resize, NULL), "size must be a size such as \"4G\"");
    assert_string_equal(check(check_volume_export, "{\"format\":\"raw\"}"),
                        "path (a string) is required; format is qcow2 or raw");
    assert_string_equal(check(check_volume_attach, "{\"vm\":3}"), "vm (a name) is required");
    assert_string_equal(check(check_image_build, NULL), "body {\"kind\":\"tiny\"} required");
    assert_string_equal(check(check_image_import, "{\"name\":\"n\",\"file\":\"f\",\"format\":1}"),
                        "format must be a string");
    assert_string_equal(check(check_alert_rule_create, NULL), "a rule object is required");
    assert_string_equal(
        check(check_alert_rule_create,
              "{\"name\":\"r\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"id\":\"x\"}"),
        "");
    assert_string_equal(check(check_alert_rule_silence, "{}"),
                        "body {\"for\":\"1h\"} or {\"until\":MS}");
    assert_string_equal(check(check_alert_rule_silence, "{\"for\":\"soon\"}"),
                        "for must be a duration such as 1h");
    assert_string_equal(check(check_alert_rule_silence, "{\"for\":\"2h\"}"), "");
}

static void test_silence_and_spec_results(void **state)
{
    struct yerr err;
    struct silence_body s;
    json_t *b = json_pack("{s:s}", "for", "2h");
    assert_int_equal(silence_body_from_json(b, &s, &err), 0);
    assert_false(s.until_set);
    assert_int_equal(s.for_s, 7200);
    json_decref(b);
    b = json_pack("{s:I}", "until", (json_int_t)12345);
    assert_int_equal(silence_body_from_json(b, &s, &err), 0);
    assert_true(s.until_set);
    assert_int_equal(s.until, 12345);
    json_decref(b);
    struct vm_spec spec;
    b = json_pack("{s:s,s:s,s:s,s:[s,s],s:b}", "name", "a", "image", "tiny", "memory", "96M",
                  "ssh_keys", "k1", "k2", "start", 1);
    assert_int_equal(vm_spec_from_json(b, &spec, &err), 0);
    assert_int_equal(spec.memory_mb, 96);
    assert_string_equal(spec.ssh_keys, "k1\nk2\n");
    assert_true(spec.start);
    json_decref(b);
}

/* PATCH /v1/vms/{name}: only the fields given change; syntax refused here
 * (the VM's own limits are the controller's). */
static void test_vm_update_body(void **state)
{
    struct vm_update u;
    struct yerr err;
    json_t *b = json_pack("{s:i,s:s}", "cpu_weight", 300, "cpu_pin", "0:1,1:0");
    assert_int_equal(vm_update_from_json(b, &u, &err), 0);
    assert_true(u.has_weight && u.has_pin);
    assert_false(u.has_quota || u.has_cpuset || u.has_epin);
    assert_int_equal(u.cpu_weight, 300);
    assert_string_equal(u.cpu_pin, "0:1,1:0");
    json_decref(b);
    b = json_pack("{s:s,s:s}", "cpu_pin", "", "emulator_pin", "");
    assert_int_equal(vm_update_from_json(b, &u, &err), 0);
    assert_true(u.has_pin && u.has_epin && !u.cpu_pin[0]);
    json_decref(b);
    static const char *const bad[][2] = {
        {"{}", "nothing to change"},
        {"{\"cpu_weight\":10001}", "cpu_weight must be in 0..10000"},
        {"{\"cpu_pin\":\"0-1\"}", "want VCPU:HOSTCPUS"},
        {"{\"cpu_pin\":\"0:1,0:2\"}", "pinned twice"},
        {"{\"emulator_pin\":\"1;\"}", "emulator-pin"},
        {"{\"cpuset\":\"a\"}", "cpuset"},
        {"{\"cpu_pin\":3}", "cpu_pin must be a string"},
        {"{\"name\":\"x\"}", "unknown field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = json_loads(bad[i][0], 0, NULL);
        assert_int_equal(vm_update_from_json(b, &u, &err), -1);
        assert_int_equal(err.code, YE_INVALID_ARGUMENT);
        if (!strstr(err.message, bad[i][1]))
            fail_msg("%s: '%s' does not say %s", bad[i][0], err.message, bad[i][1]);
        json_decref(b);
    }
}

/* Every row's check survives no body, an empty one and wrong types, and
 * says why with a 400 when it refuses. */
static void test_every_check_handles_odd_bodies(void **state)
{
    static const char *const bodies[] = {
        NULL,
        "{}",
        "{\"name\":1,\"image\":[],\"size\":-1,\"argv\":{},\"for\":null,\"until\":-5,"
        "\"kind\":false,\"file\":2,\"path\":{},\"vm\":null,\"source\":[]}",
        "{\"name\":\"x\",\"size\":\"99999999999999999999999T\",\"for\":{\"a\":1}}",
    };
    size_t n;
    char err[256];
    const struct route *t = route_table(&n, err, sizeof(err));
    assert_non_null(t);
    int checks = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].check_body)
            continue;
        checks++;
        for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++)
            check(t[i].check_body, bodies[k]);
    }
    assert_true(checks >= 12);
}

/* POST /v1/vms/{name}/migrate's body (routes_migrate.c): every member
 * optional and typed, nothing else taken. */
static void test_migrate_body(void **state)
{
    size_t n;
    char err[256];
    const struct route *t = route_table(&n, err, sizeof(err));
    assert_non_null(t);
    int (*chk)(json_t *, struct yerr *) = NULL;
    for (size_t i = 0; i < n; i++)
        if (t[i].method == EVHTTP_REQ_POST && !strcmp(t[i].pattern, "/v1/vms/{name}/migrate"))
            chk = t[i].check_body;
    assert_non_null(chk);
    static const char *const good[] = {
        "{}",
        "{\"to\":\"h2\"}",
        "{\"to\":\"h2\",\"max_bandwidth\":1048576,\"max_downtime_ms\":300,"
        "\"auto_converge\":true,\"postcopy\":false,\"strategy\":\"spread\"}",
    };
    static const char *const bad[] = {
        "[]",
        "{\"to\":1}",
        "{\"to\":\"h2\",\"max_bandwidth\":-1}",
        "{\"to\":\"h2\",\"max_bandwidth\":\"1M\"}",
        "{\"to\":\"h2\",\"max_downtime_ms\":3600001}",
        "{\"to\":\"h2\",\"auto_converge\":1}",
        "{\"to\":\"h2\",\"nope\":true}",
        "{\"strategy\":\"a-strategy-name-that-is-far-too-long\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *b = json_loads(good[i], 0, NULL);
        struct yerr e = {0};
        assert_int_equal(chk(b, &e), 0);
        json_decref(b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        struct yerr e = {0};
        assert_int_equal(chk(b, &e), -1);
        assert_int_equal(e.code, YE_INVALID_ARGUMENT);
        assert_true(e.message[0] != 0);
        json_decref(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yund_table_has_no_collisions),
        cmocka_unit_test(test_collisions_are_refused),
        cmocka_unit_test(test_malformed_rows_are_refused),
        cmocka_unit_test(test_literals_win_and_params_fill),
        cmocka_unit_test(test_404_405_and_head),
        cmocka_unit_test(test_split_limits),
        cmocka_unit_test(test_body_checks),
        cmocka_unit_test(test_silence_and_spec_results),
        cmocka_unit_test(test_vm_update_body),
        cmocka_unit_test(test_every_check_handles_odd_bodies),
        cmocka_unit_test(test_migrate_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
