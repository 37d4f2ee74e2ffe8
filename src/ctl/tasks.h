/*
 * tasks.h - the controller's long operations (clone, compact, export,
 * import, detach, image build, VM start...): one row each in the store,
 * written before the operation's first side effect, with its state,
 * progress, result or error. A task holds its object: a second operation
 * on the same object while one is unfinished is refused with a conflict
 * naming it. Rows survive a restart; tasks_recover() hands every task an
 * earlier yund left unfinished to its kind's recover function, which rolls
 * back (or finishes) its intent.
 *
 * The operation itself lives with its subject (ctl/volumes.c, ...); this
 * file only keeps the books, the waiters and the cancel hooks.
 */
#ifndef YUN_TASKS_H
#define YUN_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl/taskstate.h"
#include "lib/yerr.h"
#include "store/records.h"

struct store;
struct event_base;
struct tasks;

int tasks_init(struct tasks **out, struct store *st, struct event_base *base, char *err,
               size_t len);
void tasks_free(struct tasks *t);

/* A new task on an object, written (state running) before any side effect. An unfinished task on
 * the same object_id -> -1 with YE_CONFLICT naming it ("vm 'a' is busy: task <id> (vm.start) is
 * running"; the API adds "task":id to the error JSON). */
int task_begin(struct tasks *t, const char *kind, const char *object_type, const char *object_id,
               const char *object_name, struct task_rec *out, struct yerr *err);
/* 1 and *out (may be NULL) when an unfinished task holds object_id, else 0. */
int task_busy(struct tasks *t, const char *object_id, struct task_rec *out);
void task_progress(struct tasks *t, const char *id, uint64_t done,
                   uint64_t total); /* rate-limited writes */
void task_succeed(struct tasks *t, const char *id, json_t *result /* stolen, may be NULL */);
void task_fail(struct tasks *t, const char *id,
               const struct yerr *err); /* YE_CANCELLED -> cancelled */

/* Cancel: the operation registers how to stop; POST /v1/tasks/{id}/cancel calls it. */
typedef void (*task_cancel_fn)(void *ctx);
void task_on_cancel(struct tasks *t, const char *id, task_cancel_fn fn, void *ctx);

/* Waiting (a handler that answers 200 when its task is done, the ?wait= long poll): fn runs once
 * when the task finishes (or at once if it already has). */
typedef void (*task_done_fn)(void *ctx, const struct task_rec *task);
int task_watch(struct tasks *t, const char *id, task_done_fn fn, void *ctx);
void task_unwatch(struct tasks *t, void *ctx);

/* Recovery after a restart: every task left queued/running by an earlier yund run is handed to the
 * recover function registered for its kind, which rolls back (or finishes) its intent and returns
 * 0; then the task is marked failed ("interrupted: yund restarted") or succeeded, as it says
 * (it sets task->state = TASK_SUCCEEDED and may set task->result, malloc'd JSON text).
 * A recover function that returns -1 leaves the task unfinished; the next tasks_recover() call
 * (the reconcile pass) tries again. */
typedef int (*task_recover_fn)(void *ctx, struct task_rec *task, struct yerr *err);
void tasks_register_kind(struct tasks *t, const char *kind, task_recover_fn recover, void *ctx);
void tasks_recover(struct tasks *t); /* at start-up, before the API accepts requests */

/* ---- additions to the shared API ---- */

/* This yund run's owner tag (stored in the rows it begins). */
const char *tasks_owner(const struct tasks *t);
/* Is id a task this yund run is running (begun here and not finished)? */
bool task_live(struct tasks *t, const char *id);
/* The task as the API shows it: the row with the newest progress. 0,
 * STORE_NOTFOUND (1) or -1 (database; err filled). *out owns result/params
 * (task_rec_clear). */
int tasks_get(struct tasks *t, const char *id, struct task_rec *out, struct yerr *err);
/* Newest first (store_task_list's filter); free with tasks_rows_free. */
struct task_filter;
int tasks_list(struct tasks *t, const struct task_filter *f, struct task_rec **out, size_t *n,
               struct yerr *err);
void tasks_rows_free(struct task_rec *rows, size_t n);
/* POST /v1/tasks/{id}/cancel: YE_NOT_FOUND, YE_CONFLICT when finished or not
 * cancellable; else the cancel hook runs (the task ends "cancelled" later)
 * and *out is the task with cancel_requested set. */
int tasks_cancel(struct tasks *t, const char *id, struct task_rec *out, struct yerr *err);
/* Like task_watch, but fn also runs (once) when the progress changes. */
int task_watch_change(struct tasks *t, const char *id, task_done_fn fn, void *ctx);
/* Notes for the kind's recover function (JSON object, borrowed; written
 * at once) and the helper process the task runs (killed by tasks_recover
 * when a restart finds it still there: pid with its /proc start time). */
int task_set_params(struct tasks *t, const char *id, json_t *params);
void task_set_process(struct tasks *t, const char *id, pid_t pid, uint64_t start_time);
/* Every task start and finish is an event (type "task"); the hook records
 * it (the engine's event log and its long-polling readers). Without one the
 * event goes straight into the store. action: "start" or "finish"; result:
 * "info", "ok" or "error". */
typedef void (*task_event_fn)(void *ctx, const struct task_rec *task, const char *action,
                              const char *result, const char *reason);
void tasks_set_event_hook(struct tasks *t, task_event_fn fn, void *ctx);
/* The contract's TASK JSON (new reference). */
json_t *task_to_json(const struct task_rec *task);
/* The conflict error of an operation refused because `busy` holds its
 * object: YE_CONFLICT, "<type> '<name>' is busy: task <id> (<kind>) is running". */
int task_conflict(struct yerr *err, const struct task_rec *busy);
/* The task id a YE_CONFLICT message from task_begin/task_conflict names
 * (copied into id), for the API's "task" member: 0, or -1 when it names none. */
int task_conflict_id(const struct yerr *err, char id[37]);

#endif
