/* test_agent.c - the in-process agent's call mechanism: replies come from the
 * loop (never inside agent_call), exactly once; bad arguments, unknown verbs
 * and forgotten callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <string.h>

#include "agent/agent_local.h"
#include "compute/engine.h"

struct seen {
    int calls;
    enum yerr_code code;
    json_int_t cpus;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
    if (result)
        s->cpus = json_integer_value(json_object_get(result, "cpus"));
}

static void test_reply_from_loop(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    e.host_cpus = 7;
    snprintf(e.accel, sizeof e.accel, "tcg");
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen ok = {0}, bad = {0}, unknown = {0}, gone = {0};
    assert_true(agent_call(a, AV_HOST_FACTS, NULL, on_reply, NULL, &ok) > 0);
    assert_true(agent_call(a, AV_HOST_FACTS, json_string("x"), on_reply, NULL, &bad) > 0);
    assert_true(agent_call(a, AV_NONE, json_object(), on_reply, NULL, &unknown) > 0);
    assert_true(agent_call(a, AV_HOST_FACTS, NULL, on_reply, NULL, &gone) > 0);
    agent_forget(a, &gone);
    assert_int_equal(ok.calls + bad.calls + unknown.calls, 0); /* not inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.code, YE_NONE);
    assert_int_equal(ok.cpus, 7);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.code, YE_INVALID_ARGUMENT);
    assert_int_equal(unknown.calls, 1);
    assert_int_equal(unknown.code, YE_NOT_IMPLEMENTED);
    assert_int_equal(gone.calls, 0);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("host.facts", &v), 0);
    assert_int_equal(v, AV_HOST_FACTS);
    assert_string_equal(agent_verb_name(AV_HOST_FACTS), "host.facts");
    assert_int_equal(agent_verb_parse("no.such", &v), -1);
    assert_int_equal(agent_cancel(a, 12345), -1);
    agent_free(a);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reply_from_loop)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
