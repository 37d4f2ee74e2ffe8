/* test_tasks.c - the task state machine (full state x state table), task
 * rows in the store (schema 7, survive a reopen), the one-task-per-object
 * rule, progress, finish, cancel, waiters, events and recovery of tasks an
 * earlier yund left unfinished. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/tasks.h"
#include "store/store.h"
#include "store_backend.h"

static struct store *open_db(void)
{
    struct store *st;
    char err[256];
    assert_int_equal(store_open(tb_spec(), &st, err, sizeof(err)), 0);
    return st;
}

static int setup(void **state)
{
    return tb_fresh("tasks");
}

static int teardown(void **state)
{
    tb_cleanup();
    return 0;
}

static void test_state_table(void **s)
{
    (void)s;
    /* rows: from; columns: to (queued running succeeded failed cancelled) */
    static const bool can[TASK_STATE_COUNT][TASK_STATE_COUNT] = {
        [TASK_QUEUED] = {0, 1, 0, 1, 1},    [TASK_RUNNING] = {0, 0, 1, 1, 1},
        [TASK_SUCCEEDED] = {0, 0, 0, 0, 0}, [TASK_FAILED] = {0, 0, 0, 0, 0},
        [TASK_CANCELLED] = {0, 0, 0, 0, 0},
    };
    for (int f = 0; f < TASK_STATE_COUNT; f++) {
        for (int t = 0; t < TASK_STATE_COUNT; t++)
            assert_int_equal(task_state_can((enum task_state)f, (enum task_state)t), can[f][t]);
        enum task_state back;
        assert_int_equal(task_state_parse(task_state_name((enum task_state)f), &back), 0);
        assert_int_equal(back, f);
        assert_int_equal(task_state_finished((enum task_state)f), f >= TASK_SUCCEEDED);
    }
    enum task_state x;
    assert_int_equal(task_state_parse("bogus", &x), -1);
    assert_int_equal(task_state_parse(NULL, &x), -1);
    assert_false(task_state_can(TASK_STATE_COUNT, TASK_RUNNING));
}

struct watch_seen {
    int calls;
    enum task_state state;
};

static void on_done(void *ctx, const struct task_rec *k)
{
    struct watch_seen *w = ctx;
    w->calls++;
    w->state = k->state;
}

static void on_cancel(void *ctx)
{
    (*(int *)ctx)++;
}

static void test_begin_conflict_finish(void **s)
{
    (void)s;
    struct store *st = open_db();
    assert_int_equal(store_schema_version(st), 15);
    struct event_base *b = event_base_new();
    struct tasks *t;
    char err[128];
    assert_int_equal(tasks_init(&t, st, b, err, sizeof err), 0);
    struct task_rec k, k2;
    struct yerr e = {0};
    assert_int_equal(task_begin(t, "volume.clone", "volume", "obj-1", "v1", &k, &e), 0);
    assert_int_equal(k.state, TASK_RUNNING);
    assert_true(k.started_at > 0);
    assert_true(task_live(t, k.id));
    /* one unfinished task per object */
    assert_int_equal(task_begin(t, "volume.compact", "volume", "obj-1", "v1", &k2, &e), -1);
    assert_int_equal(e.code, YE_CONFLICT);
    assert_non_null(strstr(e.message, k.id));
    assert_non_null(strstr(e.message, "volume.clone"));
    char id[37];
    assert_int_equal(task_conflict_id(&e, id), 0);
    assert_string_equal(id, k.id);
    struct task_rec busy;
    assert_int_equal(task_busy(t, "obj-1", &busy), 1);
    assert_string_equal(busy.id, k.id);
    assert_int_equal(task_busy(t, "obj-2", NULL), 0);

    struct watch_seen w = {0}, wc = {0};
    assert_int_equal(task_watch(t, k.id, on_done, &w), 0);
    assert_int_equal(task_watch_change(t, k.id, on_done, &wc), 0);
    task_progress(t, k.id, 10, 100);
    assert_int_equal(wc.calls, 1); /* progress wakes a change waiter */
    assert_int_equal(w.calls, 0);
    struct task_rec g;
    assert_int_equal(tasks_get(t, k.id, &g, &e), 0);
    assert_int_equal(g.done, 10);
    assert_int_equal(g.total, 100);
    task_rec_clear(&g);
    /* not cancellable without a hook */
    assert_int_equal(tasks_cancel(t, k.id, NULL, &e), -1);
    assert_int_equal(e.code, YE_CONFLICT);
    task_succeed(t, k.id, json_pack("{s:s}", "name", "v1"));
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.state, TASK_SUCCEEDED);
    assert_false(task_live(t, k.id));
    assert_int_equal(tasks_get(t, k.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_SUCCEEDED);
    assert_int_equal(g.done, 100);
    assert_string_equal(g.result, "{\"name\":\"v1\"}");
    json_t *j = task_to_json(&g);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "result"), "name")),
                        "v1");
    assert_true(json_is_integer(json_object_get(j, "finished_at")));
    json_decref(j);
    task_rec_clear(&g);
    /* finished: a second finish changes nothing, a watch fires at once */
    struct yerr fe;
    yerr_set(&fe, YE_DISK_ERROR, "late");
    task_fail(t, k.id, &fe);
    assert_int_equal(tasks_get(t, k.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_SUCCEEDED);
    task_rec_clear(&g);
    struct watch_seen w2 = {0};
    assert_int_equal(task_watch(t, k.id, on_done, &w2), 0);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(tasks_cancel(t, k.id, NULL, &e), -1);
    assert_int_equal(e.code, YE_CONFLICT);
    assert_int_equal(tasks_cancel(t, "00000000-0000-0000-0000-000000000000", NULL, &e), -1);
    assert_int_equal(e.code, YE_NOT_FOUND);

    /* the object is free again; cancel with a hook */
    assert_int_equal(task_begin(t, "volume.compact", "volume", "obj-1", "v1", &k2, &e), 0);
    int cancels = 0;
    task_on_cancel(t, k2.id, on_cancel, &cancels);
    struct task_rec c;
    assert_int_equal(tasks_cancel(t, k2.id, &c, &e), 0);
    assert_true(c.cancel_requested);
    assert_true(c.cancellable);
    task_rec_clear(&c);
    assert_int_equal(cancels, 1);
    struct yerr ce;
    yerr_set(&ce, YE_CANCELLED, "cancelled");
    task_fail(t, k2.id, &ce);
    assert_int_equal(tasks_get(t, k2.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_CANCELLED);
    assert_int_equal(g.error_code, YE_CANCELLED);
    task_rec_clear(&g);

    /* list, newest first, with filters; events recorded */
    struct task_filter f = {.state = -1};
    struct task_rec *rows;
    size_t n;
    assert_int_equal(tasks_list(t, &f, &rows, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, k2.id);
    store_task_rows_free(rows, n);
    f.state = TASK_SUCCEEDED;
    assert_int_equal(tasks_list(t, &f, &rows, &n, &e), 0);
    assert_int_equal(n, 1);
    store_task_rows_free(rows, n);
    struct event_rec *evs;
    assert_int_equal(store_event_list(st, 0, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 4); /* two starts, two finishes */
    assert_string_equal(evs[0].object_type, "task");
    assert_string_equal(evs[0].action, "start");
    assert_string_equal(evs[3].action, "finish");
    free(evs);
    tasks_free(t);
    event_base_free(b);
    store_close(st);
}

static int recovered;
static int recover_fn(void *ctx, struct task_rec *k, struct yerr *err)
{
    recovered++;
    if (!strcmp(k->object_id, "ok")) {
        k->state = TASK_SUCCEEDED;
        k->result = strdup("{\"done\":true}");
    }
    if (!strcmp(k->object_id, "later"))
        return yerr_set(err, YE_DISK_ERROR, "not yet");
    return 0;
}

static void test_recover(void **s)
{
    (void)s;
    struct store *st = open_db();
    struct event_base *b = event_base_new();
    struct tasks *t;
    char err[128];
    assert_int_equal(tasks_init(&t, st, b, err, sizeof err), 0);
    struct task_rec a, c, d, x;
    struct yerr e;
    assert_int_equal(task_begin(t, "x.op", "volume", "fail", "f", &a, &e), 0);
    assert_int_equal(task_begin(t, "x.op", "volume", "ok", "o", &c, &e), 0);
    assert_int_equal(task_begin(t, "x.op", "volume", "later", "l", &d, &e), 0);
    assert_int_equal(task_begin(t, "y.unknown", "volume", "unk", "u", &x, &e), 0);
    json_t *p = json_pack("{s:s}", "tmp", "/x.part");
    assert_int_equal(task_set_params(t, a.id, p), 0);
    json_decref(p);
    /* the yund dies: its memory goes, its rows stay */
    tasks_free(t);
    store_close(st);
    st = open_db();
    assert_int_equal(tasks_init(&t, st, b, err, sizeof err), 0);
    tasks_register_kind(t, "x.op", recover_fn, NULL);
    recovered = 0;
    tasks_recover(t);
    assert_int_equal(recovered, 3);
    struct task_rec g;
    assert_int_equal(tasks_get(t, a.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_FAILED);
    assert_non_null(strstr(g.error_message, "interrupted"));
    assert_string_equal(g.params, "{\"tmp\":\"/x.part\"}");
    task_rec_clear(&g);
    assert_int_equal(tasks_get(t, c.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_SUCCEEDED);
    assert_string_equal(g.result, "{\"done\":true}");
    task_rec_clear(&g);
    assert_int_equal(tasks_get(t, d.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_RUNNING); /* retried later */
    task_rec_clear(&g);
    assert_int_equal(tasks_get(t, x.id, &g, &e), 0);
    assert_int_equal(g.state, TASK_FAILED); /* no recover function: just failed */
    task_rec_clear(&g);
    /* a prefix finds it */
    char pre[9];
    snprintf(pre, sizeof pre, "%.8s", d.id);
    assert_int_equal(tasks_get(t, pre, &g, &e), 0);
    assert_string_equal(g.id, d.id);
    task_rec_clear(&g);
    recovered = 0;
    tasks_recover(t);
    assert_int_equal(recovered, 1); /* only the one left */
    tasks_free(t);
    event_base_free(b);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_table),
        cmocka_unit_test_setup_teardown(test_begin_conflict_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
    };
    return TB_RUN_GROUPS(tests);
}
