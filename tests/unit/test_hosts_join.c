/*
 * test_hosts_join.c - what a joining agent sends, checked before anything
 * changes (ctl_host_join_parse): every impossible fact a 400 naming its
 * field; the credential's derivation (HMAC-SHA256 of the host id under the
 * join token) and its stored hash against known values; the cluster's
 * settings (host names, labels).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ctl/hosts_int.h"
#include "lib/config.h"

static json_t *good(void)
{
    return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:i,s:I,s:s,s:s,s:s,s:{s:s},s:s,s:s}", "token",
                     "0123456789abcdefXYZ", "protocol", 1, "name", "node-1", "address", "10.0.0.2",
                     "agent_url", "http://10.0.0.2:7781", "run", "r1", "cpus", 4, "memory",
                     (json_int_t)(8LL << 30), "accel", "kvm", "cpu_model", "Test", "cpu_flags",
                     "vmx", "labels", "gpu", "1", "vms_dir", "/srv/yun/vms", "images_dir",
                     "/srv/yun/images");
}

/* body with key set to v (stolen; NULL removes it) must fail naming key. */
static void bad(const char *key, json_t *v, const char *field)
{
    json_t *b = good();
    if (v)
        json_object_set_new(b, key, v);
    else
        json_object_del(b, key);
    struct host_join j;
    struct yerr err = {0};
    assert_int_equal(ctl_host_join_parse(b, &j, &err), -1);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    if (!strstr(err.message, field))
        fail_msg("%s: message '%s' does not name %s", key, err.message, field);
    json_decref(b);
}

static void test_parse_good(void **state)
{
    json_t *b = good();
    struct host_join j;
    struct yerr err = {0};
    assert_int_equal(ctl_host_join_parse(b, &j, &err), 0);
    assert_string_equal(j.name, "node-1");
    assert_int_equal(j.cpus, 4);
    assert_true(j.memory == 8ULL << 30);
    assert_string_equal(j.labels, "gpu=1");
    assert_string_equal(j.host_id, "");
    assert_string_equal(j.cpu_models, ""); /* an agent that reports none */
    json_object_set_new(b, "cpu_models", json_string("Westmere,Nehalem,qemu64"));
    assert_int_equal(ctl_host_join_parse(b, &j, &err), 0);
    assert_string_equal(j.cpu_models, "Westmere,Nehalem,qemu64");
    json_object_set_new(b, "host_id", json_string("3e3670c8-74c3-49f4-a1ae-d840423fb65d"));
    assert_int_equal(ctl_host_join_parse(b, &j, &err), 0);
    assert_string_equal(j.host_id, "3e3670c8-74c3-49f4-a1ae-d840423fb65d");
    json_decref(b);
}

/* An agent of another protocol version is told both numbers and what to do. */
static void test_parse_protocol_mismatch(void **state)
{
    json_t *b = good();
    json_object_set_new(b, "protocol", json_integer(2));
    struct host_join j;
    struct yerr err = {0};
    assert_int_equal(ctl_host_join_parse(b, &j, &err), -1);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "this agent speaks protocol 2"));
    assert_non_null(strstr(err.message, "speaks protocol 1 only"));
    assert_non_null(strstr(err.message, "same yun version"));
    json_decref(b);
}

static void test_parse_bad(void **state)
{
    bad("protocol", json_integer(2), "protocol");
    bad("protocol", NULL, "protocol");
    bad("cpus", json_integer(0), "cpus");
    bad("cpus", json_integer(-3), "cpus");
    bad("cpus", json_string("4"), "cpus");
    bad("memory", json_integer(0), "memory");
    bad("memory", json_integer(-1), "memory");
    bad("name", json_string("Node_1"), "name");
    bad("name", json_string("-x"), "name");
    bad("name", json_string(""), "name");
    bad("name", NULL, "name");
    bad("agent_url", json_string("https://10.0.0.2:7781"), "agent_url");
    bad("agent_url", json_string("http://"), "agent_url");
    bad("address", json_string("a b"), "address");
    bad("accel", json_string("xen"), "accel");
    bad("vms_dir", json_string("relative"), "vms_dir");
    bad("host_id", json_string("not-an-id"), "host_id");
    bad("token", NULL, "token");
    bad("token", json_integer(5), "token");
    bad("labels", json_pack("{s:s}", "bad key", "1"), "labels");
    bad("labels", json_pack("{s:i}", "gpu", 1), "labels");
    bad("labels", json_string("gpu=1"), "labels");
    bad("cpu_models", json_string("Westmere,,qemu64"), "cpu_models");
    bad("cpu_models", json_string("Westmere;x"), "cpu_models");
    bad("cpu_models", json_integer(3), "cpu_models");
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    bad("name", json_string(longname), "name");
}

static void test_credential(void **state)
{
    const char *tok = "0123456789abcdefXYZ";
    char cred[65], hash[65];
    assert_int_equal(
        hosts_credential(tok, strlen(tok), "3e3670c8-74c3-49f4-a1ae-d840423fb65d", cred), 0);
    /* python3: hmac.new(token, id, sha256).hexdigest() */
    assert_string_equal(cred, "e0b653b0b13e66fef98b64de71f281ad5d847fe230b2afeace142dd346511cc6");
    assert_int_equal(hosts_cred_hash(cred, hash), 0);
    assert_string_equal(hash, "44bd626869b7f6fe76b305e53c942e97fda05b3e3b059e4de2deedbc8d418b74");
    assert_int_equal(hosts_cred_hash("abc", hash), 0);
    assert_string_equal(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(hosts_ct_equal("abcd", "abcd", 4));
    assert_false(hosts_ct_equal("abcd", "abce", 4));
}

static void test_settings(void **state)
{
    assert_true(config_host_name_ok("node-1.example"));
    assert_false(config_host_name_ok("Node"));
    assert_false(config_host_name_ok(".x"));
    assert_true(config_labels_ok(""));
    assert_true(config_labels_ok("gpu=1,zone=eu-1"));
    assert_false(config_labels_ok("gpu"));
    assert_false(config_labels_ok("gpu=1,"));
    assert_false(config_labels_ok("g pu=1"));
    struct yun_config c;
    config_defaults(&c);
    char err[256];
    assert_int_equal(config_set(&c, "role", "agent", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "role", "boss", err, sizeof err), -1);
    assert_int_equal(
        config_set(&c, "join", "http://10.0.0.1:8470,http://10.0.0.2:8470", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "join", "ftp://x", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "heartbeat_ms", "10", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "agent_listen", "0.0.0.0", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "agent_listen", "127.0.0.1:7790", err, sizeof err), 0);
    /* an agent needs its token file */
    assert_int_equal(config_finish(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "token"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_protocol_mismatch),
        cmocka_unit_test(test_credential),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
