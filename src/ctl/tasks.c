/*
 * tasks.c - the books of long operations: task rows (begin, progress,
 * finish), the conflict rule (one unfinished task per object), cancel hooks,
 * waiters, events, and recovery of tasks an earlier yund left unfinished.
 *
 * What lives only in memory is what dies with the process anyway: the
 * cancel hooks, the waiters, and progress newer than the last (rate-limited)
 * write. Everything else is in the row before it matters.
 */
#include "ctl/tasks.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_WRITE_MS 1000
#define KEEP_FINISHED     1000
#define MAX_KINDS         32

struct live {
    struct live *next;
    struct tasks *t;
    char id[37];
    task_cancel_fn cancel;
    void *cancel_ctx;
    uint64_t done, total;
    int64_t written_at; /* monotonic ms of the last progress write */
    bool dirty;
    struct event *flush;
};

struct watcher {
    struct watcher *next;
    char id[37];
    task_done_fn fn;
    void *ctx;
    bool change; /* progress changes count too */
};

struct tasks {
    struct store *st;
    struct event_base *base;
    char owner[16];
    struct live *live;
    struct watcher *watchers;
    struct {
        char kind[32];
        task_recover_fn fn;
        void *ctx;
    } kinds[MAX_KINDS];
    int nkinds;
    task_event_fn on_event;
    void *on_event_ctx;
    unsigned finished_since_prune;
};

int tasks_init(struct tasks **out, struct store *st, struct event_base *base, char *err, size_t len)
{
    struct tasks *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    t->st = st;
    t->base = base;
    char uuid[37];
    uuid_generate_str(uuid);
    snprintf(t->owner, sizeof t->owner, "%.8s%.4s", uuid, uuid + 9);
    *out = t;
    return 0;
}

static void live_free(struct live *l)
{
    if (l->flush)
        event_free(l->flush);
    free(l);
}

void tasks_free(struct tasks *t)
{
    if (!t)
        return;
    while (t->live) {
        struct live *l = t->live;
        t->live = l->next;
        live_free(l);
    }
    while (t->watchers) {
        struct watcher *w = t->watchers;
        t->watchers = w->next;
        free(w);
    }
    free(t);
}

const char *tasks_owner(const struct tasks *t)
{
    return t->owner;
}

static struct live *live_find(struct tasks *t, const char *id)
{
    for (struct live *l = t->live; l; l = l->next)
        if (!strcmp(l->id, id))
            return l;
    return NULL;
}

bool task_live(struct tasks *t, const char *id)
{
    return live_find(t, id) != NULL;
}

static void live_drop(struct tasks *t, const char *id)
{
    for (struct live **pp = &t->live; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->id, id)) {
            struct live *l = *pp;
            *pp = l->next;
            live_free(l);
            return;
        }
}

void tasks_set_event_hook(struct tasks *t, task_event_fn fn, void *ctx)
{
    t->on_event = fn;
    t->on_event_ctx = ctx;
}

static void task_event(struct tasks *t, const struct task_rec *k, const char *action,
                       const char *result)
{
    char reason[512];
    if (!strcmp(action, "start"))
        snprintf(reason, sizeof reason, "%s %s '%s'", k->kind, k->object_type, k->object_name);
    else
        snprintf(reason, sizeof reason, "%s %s '%s': %s%s%s", k->kind, k->object_type,
                 k->object_name, task_state_name(k->state), k->error_message[0] ? ": " : "",
                 k->error_message);
    if (t->on_event) {
        t->on_event(t->on_event_ctx, k, action, result, reason);
        return;
    }
    struct event_rec ev = {0};
    snprintf(ev.object_type, sizeof ev.object_type, "task");
    snprintf(ev.object, sizeof ev.object, "%s", k->id);
    snprintf(ev.action, sizeof ev.action, "%s", action);
    snprintf(ev.result, sizeof ev.result, "%s", result);
    utf8_sanitize(ev.reason, sizeof ev.reason, reason, strlen(reason), false);
    if (store_event_add(t->st, &ev) != 0)
        log_err("cannot record task event: %s", store_errmsg(t->st));
}

int task_conflict(struct yerr *err, const struct task_rec *busy)
{
    return yerr_set(err, YE_CONFLICT, "%s '%s' is busy: task %s (%s) is running", busy->object_type,
                    busy->object_name, busy->id, busy->kind);
}

int task_conflict_id(const struct yerr *err, char id[37])
{
    if (err->code != YE_CONFLICT)
        return -1;
    const char *p = strstr(err->message, "task ");
    if (!p || strlen(p + 5) < 36)
        return -1;
    p += 5;
    for (int i = 0; i < 36; i++)
        if (!strchr("0123456789abcdef-", p[i]))
            return -1;
    if (p[36] && p[36] != ' ')
        return -1;
    memcpy(id, p, 36);
    id[36] = 0;
    return 0;
}

int task_begin(struct tasks *t, const char *kind, const char *object_type, const char *object_id,
               const char *object_name, struct task_rec *out, struct yerr *err)
{
    struct task_rec busy;
    int rc = store_task_active(t->st, object_id, &busy);
    if (rc == 0) {
        task_conflict(err, &busy);
        task_rec_clear(&busy);
        return -1;
    }
    if (rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(t->st));
    struct task_rec k = {0};
    uuid_generate_str(k.id);
    snprintf(k.kind, sizeof k.kind, "%s", kind);
    snprintf(k.object_type, sizeof k.object_type, "%s", object_type);
    snprintf(k.object_id, sizeof k.object_id, "%s", object_id);
    snprintf(k.object_name, sizeof k.object_name, "%s", object_name);
    k.state = TASK_RUNNING;
    k.created_at = k.started_at = now_ms();
    snprintf(k.owner, sizeof k.owner, "%s", t->owner);
    struct live *l = calloc(1, sizeof *l);
    if (!l)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    if (store_task_insert(t->st, &k) != 0) {
        free(l);
        return yerr_db(err, store_errmsg(t->st));
    }
    l->t = t;
    snprintf(l->id, sizeof l->id, "%s", k.id);
    l->written_at = monotonic_ms();
    l->next = t->live;
    t->live = l;
    task_event(t, &k, "start", "info");
    if (out)
        *out = k;
    return 0;
}

int task_busy(struct tasks *t, const char *object_id, struct task_rec *out)
{
    struct task_rec k;
    if (store_task_active(t->st, object_id, &k) != 0)
        return 0;
    task_rec_clear(&k); /* the caller gets the fixed fields only */
    if (out)
        *out = k;
    return 1;
}

/* Runs the waiters of id that want this (all of them when finished). */
static void fire_watchers(struct tasks *t, const struct task_rec *k, bool finished)
{
    struct watcher *ready = NULL, **pp = &t->watchers;
    while (*pp) {
        struct watcher *w = *pp;
        if (!strcmp(w->id, k->id) && (finished || w->change)) {
            *pp = w->next;
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    while (ready) {
        struct watcher *w = ready;
        ready = w->next;
        w->fn(w->ctx, k);
        free(w);
    }
}

static void write_progress(struct tasks *t, struct live *l)
{
    struct task_rec k;
    if (store_task_get(t->st, l->id, &k) != 0)
        return;
    if (!task_state_finished(k.state)) {
        k.done = l->done;
        k.total = l->total;
        if (store_task_update(t->st, &k) != 0)
            log_warn("task %s: cannot write progress: %s", l->id, store_errmsg(t->st));
    }
    l->dirty = false;
    l->written_at = monotonic_ms();
    task_rec_clear(&k);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct live *l = arg;
    if (l->dirty)
        write_progress(l->t, l);
}

void task_progress(struct tasks *t, const char *id, uint64_t done, uint64_t total)
{
    struct live *l = live_find(t, id);
    if (!l || (l->done == done && l->total == total))
        return;
    l->done = done;
    l->total = total;
    l->dirty = true;
    int64_t since = monotonic_ms() - l->written_at;
    if (since >= PROGRESS_WRITE_MS) {
        write_progress(t, l);
    } else {
        if (!l->flush)
            l->flush = evtimer_new(t->base, on_flush, l);
        if (l->flush && !evtimer_pending(l->flush, NULL)) {
            int64_t left = PROGRESS_WRITE_MS - since;
            struct timeval tv = {left / 1000, (left % 1000) * 1000};
            evtimer_add(l->flush, &tv);
        }
    }
    bool any = false;
    for (struct watcher *w = t->watchers; w && !any; w = w->next)
        any = w->change && !strcmp(w->id, id);
    if (any) {
        struct task_rec k;
        if (tasks_get(t, id, &k, NULL) == 0) {
            fire_watchers(t, &k, false);
            task_rec_clear(&k);
        }
    }
}

/* Moves a task to a finished state, once; a no-op for a finished one. */
static void finish(struct tasks *t, const char *id, enum task_state to, json_t *result,
                   const struct yerr *err)
{
    struct task_rec k;
    if (store_task_get(t->st, id, &k) != 0) {
        log_err("task %s: cannot finish: %s", id, store_errmsg(t->st));
        json_decref(result);
        live_drop(t, id);
        return;
    }
    if (!task_state_can(k.state, to)) {
        json_decref(result);
        task_rec_clear(&k);
        return;
    }
    struct live *l = live_find(t, id);
    if (l) {
        k.done = l->done;
        k.total = l->total;
    }
    k.state = to;
    k.finished_at = now_ms();
    if (to == TASK_SUCCEEDED && k.total)
        k.done = k.total;
    free(k.result);
    k.result = result ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    if (err && err->code) {
        k.error_code = err->code;
        snprintf(k.error_message, sizeof k.error_message, "%s", err->message);
    }
    k.pid = 0;
    k.pid_start = 0;
    if (store_task_update(t->st, &k) != 0)
        log_err("task %s: cannot record its end: %s", id, store_errmsg(t->st));
    live_drop(t, id);
    task_event(t, &k, "finish", to == TASK_SUCCEEDED ? "ok" : "error");
    fire_watchers(t, &k, true);
    task_rec_clear(&k);
    if (++t->finished_since_prune >= 64) {
        t->finished_since_prune = 0;
        if (store_task_prune(t->st, KEEP_FINISHED) < 0)
            log_warn("pruning tasks: %s", store_errmsg(t->st));
    }
}

void task_succeed(struct tasks *t, const char *id, json_t *result)
{
    finish(t, id, TASK_SUCCEEDED, result, NULL);
}

void task_fail(struct tasks *t, const char *id, const struct yerr *err)
{
    struct yerr e = {0};
    if (!err || !err->code) {
        yerr_set(&e, YE_INTERNAL, "failed");
        err = &e;
    }
    finish(t, id, err->code == YE_CANCELLED ? TASK_CANCELLED : TASK_FAILED, NULL, err);
}

void task_on_cancel(struct tasks *t, const char *id, task_cancel_fn fn, void *ctx)
{
    struct live *l = live_find(t, id);
    if (!l)
        return;
    l->cancel = fn;
    l->cancel_ctx = ctx;
    struct task_rec k;
    if (store_task_get(t->st, id, &k) != 0)
        return;
    if (k.cancellable != (fn != NULL)) {
        k.cancellable = fn != NULL;
        if (store_task_update(t->st, &k) != 0)
            log_warn("task %s: %s", id, store_errmsg(t->st));
    }
    task_rec_clear(&k);
}

int tasks_cancel(struct tasks *t, const char *id, struct task_rec *out, struct yerr *err)
{
    struct task_rec k;
    int rc = tasks_get(t, id, &k, err);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "task '%s' does not exist", id);
    if (rc != 0)
        return -1;
    struct live *l = live_find(t, k.id);
    if (task_state_finished(k.state)) {
        yerr_set(err, YE_CONFLICT, "task %s is already %s", k.id, task_state_name(k.state));
        task_rec_clear(&k);
        return -1;
    }
    if (!l || !l->cancel) {
        yerr_set(err, YE_CONFLICT, "task %s (%s) cannot be cancelled", k.id, k.kind);
        task_rec_clear(&k);
        return -1;
    }
    if (!k.cancel_requested) {
        k.cancel_requested = true;
        if (store_task_update(t->st, &k) != 0) {
            task_rec_clear(&k);
            return yerr_db(err, store_errmsg(t->st));
        }
        task_cancel_fn fn = l->cancel;
        void *ctx = l->cancel_ctx;
        fn(ctx); /* may finish the task at once */
    }
    if (out)
        *out = k;
    else
        task_rec_clear(&k);
    return 0;
}

static int add_watcher(struct tasks *t, const char *id, task_done_fn fn, void *ctx, bool change)
{
    struct task_rec k;
    if (tasks_get(t, id, &k, NULL) != 0)
        return -1;
    if (task_state_finished(k.state)) {
        fn(ctx, &k);
        task_rec_clear(&k);
        return 0;
    }
    struct watcher *w = calloc(1, sizeof *w);
    if (!w) {
        task_rec_clear(&k);
        return -1;
    }
    snprintf(w->id, sizeof w->id, "%s", k.id);
    task_rec_clear(&k);
    w->fn = fn;
    w->ctx = ctx;
    w->change = change;
    w->next = t->watchers;
    t->watchers = w;
    return 0;
}

int task_watch(struct tasks *t, const char *id, task_done_fn fn, void *ctx)
{
    return add_watcher(t, id, fn, ctx, false);
}

int task_watch_change(struct tasks *t, const char *id, task_done_fn fn, void *ctx)
{
    return add_watcher(t, id, fn, ctx, true);
}

void task_unwatch(struct tasks *t, void *ctx)
{
    struct watcher **pp = &t->watchers;
    while (*pp) {
        if ((*pp)->ctx == ctx) {
            struct watcher *w = *pp;
            *pp = w->next;
            free(w);
        } else {
            pp = &(*pp)->next;
        }
    }
}

int task_set_params(struct tasks *t, const char *id, json_t *params)
{
    struct task_rec k;
    if (store_task_get(t->st, id, &k) != 0)
        return -1;
    free(k.params);
    k.params = params ? json_dumps(params, JSON_COMPACT) : NULL;
    int rc = store_task_update(t->st, &k) == 0 ? 0 : -1;
    task_rec_clear(&k);
    return rc;
}

void task_set_process(struct tasks *t, const char *id, pid_t pid, uint64_t start_time)
{
    struct task_rec k;
    if (store_task_get(t->st, id, &k) != 0)
        return;
    k.pid = (int32_t)pid;
    k.pid_start = start_time;
    if (store_task_update(t->st, &k) != 0)
        log_warn("task %s: %s", id, store_errmsg(t->st));
    task_rec_clear(&k);
}

static void overlay_progress(struct tasks *t, struct task_rec *k)
{
    struct live *l = live_find(t, k->id);
    if (l && !task_state_finished(k->state)) {
        k->done = l->done;
        k->total = l->total;
    }
}

int tasks_get(struct tasks *t, const char *id, struct task_rec *out, struct yerr *err)
{
    int rc = store_task_get(t->st, id, out);
    if (rc == STORE_NOTFOUND)
        return rc;
    if (rc != 0) {
        if (err)
            yerr_db(err, store_errmsg(t->st));
        return -1;
    }
    overlay_progress(t, out);
    return 0;
}

void tasks_rows_free(struct task_rec *rows, size_t n)
{
    store_task_rows_free(rows, n);
}

int tasks_list(struct tasks *t, const struct task_filter *f, struct task_rec **out, size_t *n,
               struct yerr *err)
{
    if (store_task_list(t->st, f, out, n) != 0)
        return yerr_db(err, store_errmsg(t->st));
    for (size_t i = 0; i < *n; i++)
        overlay_progress(t, &(*out)[i]);
    return 0;
}

void tasks_register_kind(struct tasks *t, const char *kind, task_recover_fn recover, void *ctx)
{
    for (int i = 0; i < t->nkinds; i++)
        if (!strcmp(t->kinds[i].kind, kind)) {
            t->kinds[i].fn = recover;
            t->kinds[i].ctx = ctx;
            return;
        }
    if (t->nkinds == MAX_KINDS) {
        log_err("tasks: too many kinds (%s not registered)", kind);
        return;
    }
    snprintf(t->kinds[t->nkinds].kind, sizeof t->kinds[0].kind, "%s", kind);
    t->kinds[t->nkinds].fn = recover;
    t->kinds[t->nkinds].ctx = ctx;
    t->nkinds++;
}

/* A helper process the task ran, still there after the yund that ran it
 * died: ended (with its process group) before anything is rolled back. */
static void end_orphan(const struct task_rec *k)
{
    uint64_t st;
    if (k->pid <= 1 || job_proc_start_time(k->pid, &st) < 0 || st != k->pid_start)
        return;
    log_warn("task %s: ending its helper process %d left by an earlier yund", k->id, k->pid);
    kill(-k->pid, SIGKILL);
    kill(k->pid, SIGKILL);
    /* gone once its parent (init) reaps it: at most a moment */
    for (int i = 0; i < 300; i++) {
        if (job_proc_start_time(k->pid, &st) < 0 || st != k->pid_start ||
            pid_state(k->pid) == PID_GONE)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    log_err("task %s: helper process %d does not go away", k->id, k->pid);
}

void tasks_recover(struct tasks *t)
{
    struct task_filter f = {.state = -1, .unfinished = true, .limit = 100000};
    struct task_rec *rows;
    size_t n;
    if (store_task_list(t->st, &f, &rows, &n) != 0) {
        log_err("tasks: cannot list unfinished tasks: %s", store_errmsg(t->st));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct task_rec *k = &rows[i];
        if (live_find(t, k->id))
            continue; /* ours, still running */
        end_orphan(k);
        task_recover_fn fn = NULL;
        void *ctx = NULL;
        for (int j = 0; j < t->nkinds; j++)
            if (!strcmp(t->kinds[j].kind, k->kind)) {
                fn = t->kinds[j].fn;
                ctx = t->kinds[j].ctx;
            }
        struct yerr err = {0};
        if (fn && fn(ctx, k, &err) < 0) {
            log_warn("task %s (%s): recovery failed, retried later: %s", k->id, k->kind,
                     err.message);
            continue;
        }
        /* finish() reads the row: adopt it as ours first */
        struct live *l = calloc(1, sizeof *l);
        if (!l)
            continue;
        l->t = t;
        snprintf(l->id, sizeof l->id, "%s", k->id);
        l->done = k->done;
        l->total = k->total;
        l->next = t->live;
        t->live = l;
        if (k->state == TASK_SUCCEEDED) {
            json_t *res = k->result ? json_loads(k->result, 0, NULL) : NULL;
            /* the row still says running: finish it as succeeded */
            k->state = TASK_RUNNING;
            store_task_update(t->st, k);
            finish(t, k->id, TASK_SUCCEEDED, res, NULL);
        } else {
            struct yerr e;
            yerr_set(&e, YE_INTERNAL, "interrupted: yund restarted");
            if (k->state == TASK_QUEUED) {
                k->state = TASK_RUNNING;
                store_task_update(t->st, k);
            }
            finish(t, k->id, TASK_FAILED, NULL, &e);
        }
    }
    store_task_rows_free(rows, n);
}

json_t *task_to_json(const struct task_rec *k)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(k->id));
    json_object_set_new(j, "kind", json_string(k->kind));
    json_object_set_new(j, "object",
                        json_pack("{s:s,s:s,s:s}", "type", k->object_type, "id", k->object_id,
                                  "name", k->object_name));
    json_object_set_new(j, "state", json_string(task_state_name(k->state)));
    if (k->total)
        json_object_set_new(j, "progress",
                            json_pack("{s:I,s:I,s:s}", "done", (json_int_t)k->done, "total",
                                      (json_int_t)k->total, "unit", "bytes"));
    if (k->state == TASK_SUCCEEDED && k->result) {
        json_t *r = json_loads(k->result, 0, NULL);
        if (r)
            json_object_set_new(j, "result", r);
    }
    if (k->error_code && k->state != TASK_SUCCEEDED)
        json_object_set_new(j, "error",
                            json_pack("{s:s,s:s}", "code", yerr_code_name(k->error_code), "message",
                                      k->error_message));
    json_object_set_new(j, "created_at", json_integer(k->created_at));
    json_object_set_new(j, "started_at", k->started_at ? json_integer(k->started_at) : json_null());
    json_object_set_new(j, "finished_at",
                        k->finished_at ? json_integer(k->finished_at) : json_null());
    json_object_set_new(j, "cancellable",
                        json_boolean(k->cancellable && !task_state_finished(k->state)));
    if (k->cancel_requested)
        json_object_set_new(j, "cancel_requested", json_true());
    /* an operation's live figures (vm.migrate: phase, RAM, disk mirror) */
    json_t *p = k->params ? json_loads(k->params, 0, NULL) : NULL;
    json_t *d = json_object_get(p, "detail");
    if (json_is_object(d))
        json_object_set(j, "detail", d);
    json_decref(p);
    return j;
}
