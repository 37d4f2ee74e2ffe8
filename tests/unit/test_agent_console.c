/* test_agent_console.c - the agent's vm.console_read (agent_console.c): its
 * argument checks, a read of a real console.log with bytes JSON cannot hold
 * as text (base64 both ways), clamping, a VM with no log; and the
 * controller's decoding of the result (ctl/console.c), malformed ones
 * refused. And lib/base64.c round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "ctl/console.h"
#include "lib/base64.h"
#include "lib/util.h"

#define VM_ID "0123abcd-0000-0000-0000-000000000000"

struct seen {
    int calls;
    enum yerr_code code;
    char msg[256];
    json_t *result;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    snprintf(s->msg, sizeof s->msg, "%s", err ? err->message : "");
    assert_true((result == NULL) == (err != NULL));
    json_decref(s->result);
    s->result = result ? json_incref(result) : NULL;
}

/* One call: its reply never comes inside agent_call, and comes once. */
static enum yerr_code call(struct agent *a, struct event_base *b, json_t *args, struct seen *s)
{
    json_decref(s->result);
    memset(s, 0, sizeof *s);
    assert_true(agent_call(a, AV_VM_CONSOLE_READ, args, on_reply, NULL, s) > 0);
    assert_int_equal(s->calls, 0);
    event_base_loop(b, EVLOOP_NONBLOCK);
    assert_int_equal(s->calls, 1);
    return s->code;
}

struct fixture {
    char tmp[64];
    struct engine e;
    struct event_base *base;
    struct agent *a;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->tmp, sizeof f->tmp, "/tmp/yun-unit-agcon-%d", (int)getpid());
    remove_tree(f->tmp);
    char dir[200];
    snprintf(f->e.vms_dir, sizeof f->e.vms_dir, "%s/vms", f->tmp);
    snprintf(dir, sizeof dir, "%s/vms/%s", f->tmp, VM_ID);
    if (mkdir(f->tmp, 0700) < 0 || mkdir(f->e.vms_dir, 0700) < 0 || mkdir(dir, 0700) < 0)
        return -1;
    f->base = event_base_new();
    f->a = agent_local_new(f->base, NULL, &f->e);
    *state = f;
    return f->a ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    agent_free(f->a);
    event_base_free(f->base);
    remove_tree(f->tmp);
    free(f);
    return 0;
}

static void test_bad_args(void **state)
{
    struct fixture *f = *state;
    json_t *bad[] = {
        json_object(),
        json_pack("{s:I,s:I}", "offset", (json_int_t)0, "max", (json_int_t)10),
        json_pack("{s:s,s:I,s:I}", "vm", "../etc", "offset", (json_int_t)0, "max", (json_int_t)10),
        json_pack("{s:i,s:I,s:I}", "vm", 7, "offset", (json_int_t)0, "max", (json_int_t)10),
        json_pack("{s:s,s:I}", "vm", VM_ID, "max", (json_int_t)10),
        json_pack("{s:s,s:I}", "vm", VM_ID, "offset", (json_int_t)0),
        json_pack("{s:s,s:I,s:I}", "vm", VM_ID, "offset", (json_int_t)-1, "max", (json_int_t)10),
        json_pack("{s:s,s:s,s:I}", "vm", VM_ID, "offset", "0", "max", (json_int_t)10),
        json_pack("{s:s,s:f,s:I}", "vm", VM_ID, "offset", 1.5, "max", (json_int_t)10),
        json_pack("{s:s,s:I,s:I}", "vm", VM_ID, "offset", (json_int_t)0, "max", (json_int_t)0),
        json_pack("{s:s,s:I,s:I}", "vm", VM_ID, "offset", (json_int_t)0, "max",
                  (json_int_t)(16 << 20) + 1),
        json_pack("{s:s,s:I,s:b}", "vm", VM_ID, "offset", (json_int_t)0, "max", 1),
        json_array(),
    };
    struct seen s = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (call(f->a, f->base, bad[i], &s) != YE_INVALID_ARGUMENT)
            fail_msg("bad arguments #%zu answered %d (%s)", i, (int)s.code, s.msg);
    json_decref(s.result);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.console_read", &v), 0);
    assert_int_equal(v, AV_VM_CONSOLE_READ);
    assert_string_equal(agent_verb_name(AV_VM_CONSOLE_READ), "vm.console_read");
}

static json_t *args(uint64_t offset, uint64_t max)
{
    return json_pack("{s:s,s:I,s:I}", "vm", VM_ID, "offset", (json_int_t)offset, "max",
                     (json_int_t)max);
}

static void test_read(void **state)
{
    struct fixture *f = *state;
    struct seen s = {0};
    struct ctl_console_chunk ch;
    struct yerr err;

    /* no console.log yet: empty, at 0 */
    assert_int_equal(call(f->a, f->base, args(0, 100), &s), YE_NONE);
    assert_int_equal(ctl_console_decode(s.result, &ch, &err), 0);
    assert_int_equal(ch.len, 0);
    assert_int_equal(ch.next, 0);
    assert_int_equal(ch.end, 0);
    free(ch.data);

    static const unsigned char bytes[] = {'o', 'k', 0, 0xff, 0xc3, '\n', 0x1b, '[', 'm', 'z'};
    char path[300];
    snprintf(path, sizeof path, "%s/%s/console.log", f->e.vms_dir, VM_ID);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    close(fd);

    assert_int_equal(call(f->a, f->base, args(0, 100), &s), YE_NONE);
    assert_int_equal(ctl_console_decode(s.result, &ch, &err), 0);
    assert_int_equal(ch.len, sizeof bytes);
    assert_memory_equal(ch.data, bytes, sizeof bytes);
    assert_int_equal(ch.next, sizeof bytes);
    assert_int_equal(ch.end, sizeof bytes);
    assert_int_equal(ch.start, 0);
    free(ch.data);

    /* a bounded read from the middle */
    assert_int_equal(call(f->a, f->base, args(2, 3), &s), YE_NONE);
    assert_int_equal(ctl_console_decode(s.result, &ch, &err), 0);
    assert_int_equal(ch.len, 3);
    assert_memory_equal(ch.data, bytes + 2, 3);
    assert_int_equal(ch.next, 5);
    free(ch.data);

    /* past the end: clamped to it, nothing read */
    assert_int_equal(call(f->a, f->base, args(1000, 10), &s), YE_NONE);
    assert_int_equal(ctl_console_decode(s.result, &ch, &err), 0);
    assert_int_equal(ch.len, 0);
    assert_int_equal(ch.next, sizeof bytes);
    free(ch.data);

    /* results the controller does not take */
    json_t *good = json_deep_copy(s.result);
    const char *keys[] = {"data_b64", "offset", "next", "start", "end"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *r = json_deep_copy(good);
        json_object_del(r, keys[i]);
        assert_int_equal(ctl_console_decode(r, &ch, &err), -1);
        assert_int_equal(err.code, YE_INTERNAL);
        assert_null(ch.data);
        json_object_set_new(r, keys[i], json_integer(-1));
        assert_int_equal(ctl_console_decode(r, &ch, &err), -1);
        json_decref(r);
    }
    json_t *r = json_deep_copy(good);
    json_object_set_new(r, "data_b64", json_string("QUJD")); /* 3 bytes, next says 0 more */
    assert_int_equal(ctl_console_decode(r, &ch, &err), -1);
    assert_null(ch.data);
    json_decref(r);
    assert_int_equal(ctl_console_decode(NULL, &ch, &err), -1);
    json_decref(good);
    json_decref(s.result);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n += (n < 8 ? 1 : 61)) {
        char *enc = base64_encode(all, n);
        assert_non_null(enc);
        assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
        size_t m;
        unsigned char *dec = base64_decode(enc, &m);
        assert_non_null(dec);
        assert_int_equal(m, n);
        assert_memory_equal(dec, all, n);
        free(enc);
        free(dec);
    }
    char *enc = base64_encode("hi\n", 3);
    assert_string_equal(enc, "aGkK");
    free(enc);
    size_t m;
    unsigned char *dec = base64_decode("aG\nkK", &m); /* whitespace skipped */
    assert_int_equal(m, 3);
    assert_string_equal((char *)dec, "hi\n");
    free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
