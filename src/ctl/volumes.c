/*
 * volumes.c - long volume operations as tasks (full clone, compact,
 * export), their crash recovery, and the volume reconcile pass.
 *
 * Each operation: checks, then task_begin (the task holds the volume), then
 * the intent row (a clone's new row "creating", owned by the task), then
 * agent_call(AV_DISK_COPY) with progress into the task, then the row made
 * final and the task finished. The steps are fault points:
 *   clone.after_row      row "creating", no file yet   -> recover: row removed
 *   clone.after_copy     file complete, row creating   -> recover: file and row removed
 *   clone.after_ready    row ready, task running       -> recover: task succeeded
 *   compact.after_begin  task running, no copy yet     -> recover: .part removed, row as it was
 *   compact.after_copy   file replaced, task running   -> recover: task failed, volume intact
 *   export.after_begin   task running                  -> recover: export .part removed
 *   export.after_copy    export complete, task running -> recover: task failed, file kept
 * and in the agent, disk_copy.before_rename (copy complete in DST.part).
 */
#include "ctl/migrate.h"
#include "ctl/volumes.h"
#include "ctl/ctl.h"
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"
#include "storage/exchange.h"
#include "storage/pool_files.h"
#include "storage/volstate.h"
#include "storage/volumes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vop {
    struct ctl *c;
    char task[37];
    char format[8]; /* export: the format written */
    struct volume_rec v;
    uint64_t before;
    uint64_t call;
    char dest[512];
};

json_t *ctl_volume_to_json(struct ctl *c, const struct volume_rec *v)
{
    struct vm_rec vm;
    const char *vmname = "";
    if (v->attached_to[0] && store_vm_get(c->store, v->attached_to, &vm) == 0)
        vmname = vm.name;
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:I}", "id", v->id, "name", v->name,
                  "pool", v->pool, "format", v->format, "path", v->path, "virtual_size",
                  (json_int_t)v->virtual_size, "actual_size", (json_int_t)volume_actual_size(v),
                  "backing", v->backing, "attached_to", v->attached_to, "vm", vmname, "state",
                  vol_state_name(v->state), "created_at", (json_int_t)v->created_at);
    if (j && v->task[0])
        json_object_set_new(j, "task", json_string(v->task));
    if (j) {
        json_object_set_new(j, "host_id", json_string(v->host));
        json_object_set_new(j, "host", json_string(ctl_host_name(c, v->host)));
    }
    return j;
}

/* The volume's running task, first of all checks: the 409 names it; then
 * its host: one that is down is 503. */
static int refuse_busy(struct ctl *c, const struct volume_rec *v, struct yerr *err)
{
    if (!ctl_host_agent(c, v->host, err))
        return -1;
    struct task_rec busy;
    if (task_busy(c->tasks, v->id, &busy))
        return task_conflict(err, &busy);
    if (ctl_volume_quick_busy(c, v->id))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is busy: another operation is running",
                        v->name);
    if (v->attached_to[0] && ctl_migration_open(c, v->attached_to))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is moving with its vm (a migration)",
                        v->name);
    return 0;
}

static bool settled(const struct volume_rec *v)
{
    return vol_state_settled(v->state);
}

int ctl_volume_idle(struct ctl *c, const char *name, struct yerr *err)
{
    struct volume_rec v;
    if (ctl_volume_get(c, name, &v, err) < 0)
        return -1;
    return refuse_busy(c, &v, err);
}

static void vop_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct vop *op = ctx;
    task_progress(op->c->tasks, op->task, done, total);
}

static void vop_cancel(void *ctx)
{
    struct vop *op = ctx;
    ctl_host_cancel(op->c, op->v.host, op->call);
}

/* Starts the copy of op; on failure to start, the reply still comes
 * (agent_call always answers from the loop). */
static void vop_copy(struct vop *op, json_t *args, agent_reply_fn done)
{
    op->call = ctl_host_call(op->c, op->v.host, AV_DISK_COPY, args, done, vop_progress, op);
    task_on_cancel(op->c->tasks, op->task, vop_cancel, op);
}

/* ---- full clone ---- */

static void clone_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct vop *op = ctx;
    struct ctl *c = op->c;
    struct volume_rec *v = &op->v;
    struct yerr fe = {0};
    if (!err) {
        FAILPOINT("clone.after_copy");
        v->state = VOL_READY;
        v->task[0] = 0;
        if (store_volume_update(c->store, v) != 0) {
            yerr_db(&fe, store_errmsg(c->store));
            err = &fe;
            ctl_host_call(c, v->host, AV_DISK_REMOVE, json_pack("{s:s}", "path", v->path), NULL,
                          NULL, NULL);
        }
    }
    if (err) {
        store_volume_delete(c->store, v->id);
        ctl_event(c, "volume", v->name, "clone-full", "error", "%s", err->message);
        task_fail(c->tasks, op->task, err);
    } else {
        FAILPOINT("clone.after_ready");
        ctl_event(c, "volume", v->name, "clone-full", "ok", "%s, %llu bytes", v->format,
                  (unsigned long long)v->virtual_size);
        task_succeed(c->tasks, op->task, ctl_volume_to_json(c, v));
    }
    free(op);
}

int ctl_volume_clone_full(struct ctl *c, const char *src, const char *dst, struct task_rec *task,
                          struct yerr *err)
{
    struct volume_rec s;
    struct vm_rec vm;
    char why[256];
    if (ctl_volume_get(c, src, &s, err) < 0 || refuse_busy(c, &s, err) < 0)
        return -1;
    if (ctl_volume_in_use(c, &s, &vm))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is in use by running vm '%s'", s.name,
                        vm.name);
    if (!settled(&s))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", s.name, vol_state_name(s.state));
    if (!name_valid(dst, why, sizeof why))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    struct volume_rec x;
    if (store_volume_get(c->store, dst, &x) == 0)
        return yerr_set(err, YE_CONFLICT, "volume '%s' already exists", dst);
    struct vop *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    struct volume_rec *v = &op->v;
    uuid_generate_str(v->id);
    snprintf(v->name, sizeof v->name, "%s", dst);
    snprintf(v->pool, sizeof v->pool, "%s", s.pool);
    snprintf(v->host, sizeof v->host, "%s", s.host); /* a copy is made on the source's host */
    snprintf(v->format, sizeof v->format, "%s", s.format);
    char *slash = strrchr(s.path, '/');
    snprintf(v->path, sizeof v->path, "%.*s/%s.%s", (int)(slash ? slash - s.path : 0), s.path, dst,
             s.format);
    v->virtual_size = s.virtual_size;
    v->state = VOL_CREATING;
    v->created_at = now_ms();
    if (task_begin(c->tasks, "volume.clone", "volume", v->id, v->name, task, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof op->task, "%s", task->id);
    snprintf(v->task, sizeof v->task, "%s", task->id);
    json_t *p = json_pack("{s:s,s:s}", "source", s.id, "path", v->path);
    task_set_params(c->tasks, task->id, p);
    json_decref(p);
    int rc = store_volume_insert(c->store, v);
    if (rc != 0) {
        if (rc == STORE_CONFLICT)
            yerr_set(err, YE_CONFLICT, "volume '%s' already exists", dst);
        else
            yerr_db(err, store_errmsg(c->store));
        task_fail(c->tasks, task->id, err);
        free(op);
        return -1;
    }
    FAILPOINT("clone.after_row");
    vop_copy(op,
             json_pack("{s:s,s:s,s:s,s:s,s:I}", "src", s.path, "src_format", s.format, "dst",
                       v->path, "dst_format", v->format, "total", (json_int_t)s.virtual_size),
             clone_done);
    return 0;
}

/* ---- compact ---- */

static void compact_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct vop *op = ctx;
    struct ctl *c = op->c;
    struct volume_rec *v = &op->v;
    if (!err)
        FAILPOINT("compact.after_copy");
    struct volume_rec cur;
    if (store_volume_get(c->store, v->id, &cur) == 0) {
        cur.task[0] = 0;
        store_volume_update(c->store, &cur);
        *v = cur;
    }
    if (err) {
        ctl_event(c, "volume", v->name, "compact", "error", "%s", err->message);
        task_fail(c->tasks, op->task, err);
    } else {
        uint64_t after = volume_actual_size(v);
        ctl_event(c, "volume", v->name, "compact", "ok", "%llu -> %llu bytes on disk",
                  (unsigned long long)op->before, (unsigned long long)after);
        json_t *j = ctl_volume_to_json(c, v);
        json_object_set_new(j, "before_bytes", json_integer((json_int_t)op->before));
        json_object_set_new(j, "after_bytes", json_integer((json_int_t)after));
        json_object_set_new(
            j, "reclaimed_bytes",
            json_integer((json_int_t)(op->before > after ? op->before - after : 0)));
        task_succeed(c->tasks, op->task, j);
    }
    free(op);
}

int ctl_volume_compact(struct ctl *c, const char *name, struct task_rec *task, struct yerr *err)
{
    struct volume_rec v;
    if (ctl_volume_get(c, name, &v, err) < 0 || refuse_busy(c, &v, err) < 0)
        return -1;
    if (v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is attached: detach it first", v.name);
    if (ctl_volume_refuse_backing(c, &v, "rewriting it would break them", err) < 0)
        return -1;
    if (!settled(&v))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, vol_state_name(v.state));
    struct vop *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    if (task_begin(c->tasks, "volume.compact", "volume", v.id, v.name, task, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof op->task, "%s", task->id);
    snprintf(v.task, sizeof v.task, "%s", task->id);
    if (store_volume_update(c->store, &v) != 0) {
        yerr_db(err, store_errmsg(c->store));
        task_fail(c->tasks, task->id, err);
        free(op);
        return -1;
    }
    op->v = v;
    op->before = volume_actual_size(&v);
    FAILPOINT("compact.after_begin");
    /* Rewrite into a new file (only clusters holding data are copied), which
     * replaces the original once complete. */
    struct volume_rec b;
    bool linked = v.backing[0] && store_volume_get(c->store, v.backing, &b) == 0;
    json_t *args = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I}", "src", v.path, "src_format", v.format,
                             "dst", v.path, "dst_format", linked ? "qcow2" : v.format, "replace", 1,
                             "total", (json_int_t)v.virtual_size);
    if (linked) {
        json_object_set_new(args, "backing", json_string(b.path));
        json_object_set_new(args, "backing_format", json_string(b.format));
    } else {
        json_object_set_new(args, "sparse", json_true());
    }
    vop_copy(op, args, compact_done);
    return 0;
}

/* ---- export ---- */

static void export_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct vop *op = ctx;
    struct ctl *c = op->c;
    if (err) {
        ctl_event(c, "volume", op->v.name, "export", "error", "%s", err->message);
        task_fail(c->tasks, op->task, err);
    } else {
        FAILPOINT("export.after_copy");
        json_int_t bytes = json_integer_value(json_object_get(result, "bytes"));
        ctl_event(c, "volume", op->v.name, "export", "ok", "to %s (%s)", op->dest, op->format);
        task_succeed(
            c->tasks, op->task,
            json_pack("{s:s,s:s,s:I}", "name", op->v.name, "path", op->dest, "bytes", bytes));
    }
    free(op);
}

int ctl_volume_export(struct ctl *c, const char *name, const char *dest, const char *format,
                      struct task_rec *task, struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (ctl_volume_get(c, name, &v, err) < 0 || refuse_busy(c, &v, err) < 0)
        return -1;
    if (!format || !format[0])
        format = v.format;
    if (strcmp(format, "qcow2") && strcmp(format, "raw"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw");
    if (!settled(&v))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, vol_state_name(v.state));
    if (ctl_volume_in_use(c, &v, &vm))
        return yerr_set(err, YE_CONFLICT,
                        "volume '%s' is in use by running vm '%s': stop it or detach the volume "
                        "first",
                        v.name, vm.name);
    /* the path is judged now, so a bad one is a 400, not a failed task */
    if (exchange_check_export(c->cfg, dest, err) < 0)
        return -1;
    struct vop *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    op->v = v;
    snprintf(op->dest, sizeof op->dest, "%s", dest);
    snprintf(op->format, sizeof op->format, "%s", format);
    if (task_begin(c->tasks, "volume.export", "volume", v.id, v.name, task, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof op->task, "%s", task->id);
    json_t *p = json_pack("{s:s}", "export", dest);
    task_set_params(c->tasks, task->id, p);
    json_decref(p);
    FAILPOINT("export.after_begin");
    vop_copy(op,
             json_pack("{s:s,s:s,s:s,s:s,s:b,s:I}", "src", v.path, "src_format", v.format, "dst",
                       dest, "dst_format", format, "export", 1, "total",
                       (json_int_t)v.virtual_size),
             export_done);
    return 0;
}

/* ---- recovery ---- */

static void remove_file(struct ctl *c, const char *host, const char *key, const char *path)
{
    ctl_host_call(c, host, AV_DISK_REMOVE, json_pack("{s:s}", key, path), NULL, NULL, NULL);
}

static void remove_part(struct ctl *c, const char *host, const char *path)
{
    char part[600];
    snprintf(part, sizeof part, "%s.part", path);
    remove_file(c, host, "path", part);
}

/* A full clone or an import: a new row "creating" owned by the task. */
static int recover_clone(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct volume_rec v;
    int rc = store_volume_get(c->store, k->object_id, &v);
    if (rc == STORE_NOTFOUND)
        return 0; /* the row never came or is gone */
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    if (settled(&v)) { /* done but for the task's end */
        k->state = TASK_SUCCEEDED;
        json_t *j = ctl_volume_to_json(c, &v);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 0;
    }
    if (store_volume_delete(c->store, v.id) != 0)
        return yerr_db(err, store_errmsg(c->store));
    remove_part(c, v.host, v.path);
    remove_file(c, v.host, "path", v.path);
    ctl_event(c, "volume", v.name, strcmp(k->kind, "volume.import") ? "clone-full" : "import",
              "error", "rolled back: yund stopped before it finished");
    return 0;
}

static int recover_compact(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct volume_rec v;
    int rc = store_volume_get(c->store, k->object_id, &v);
    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    remove_part(c, v.host, v.path);
    if (!strcmp(v.task, k->id)) {
        v.task[0] = 0;
        if (store_volume_update(c->store, &v) != 0)
            return yerr_db(err, store_errmsg(c->store));
    }
    return 0;
}

static int recover_export(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    json_t *p = k->params ? json_loads(k->params, 0, NULL) : NULL;
    const char *dest = json_string_value(json_object_get(p, "export"));
    struct volume_rec v = {0}; /* the export was written on the volume's host */
    if (dest && store_volume_get(c->store, k->object_id, &v) == 0)
        remove_file(c, v.host, "export", dest);
    json_decref(p);
    return 0;
}

void ctl_volumes_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "volume.clone", recover_clone, c);
    tasks_register_kind(c->tasks, "volume.import", recover_clone, c); /* the same intent */
    ctl_volumes_detach_init(c);
    tasks_register_kind(c->tasks, "volume.compact", recover_compact, c);
    tasks_register_kind(c->tasks, "volume.export", recover_export, c);
}

/* ---- reconcile ---- */

static void on_orphan(void *ctx, const char *name)
{
    ctl_event(ctx, "volume", name, "orphan", "info", "removed a pool file with no volume record");
}

void ctl_volumes_reconcile(struct ctl *c)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(c->store, &vs, &n) != 0)
        return;
    /* names a row or a running task owns: the file, and a copy's .part */
    const char **known = calloc(2 * n + 1, sizeof *known);
    char(*parts)[80] = calloc(n + 1, sizeof *parts);
    size_t nk = 0;
    bool ok = known && parts;
    for (size_t i = 0; i < n && ok; i++) {
        struct volume_rec *v = &vs[i];
        bool busy = task_busy(c->tasks, v->id, NULL) || ctl_volume_quick_busy(c, v->id);
        bool transient = vol_state_transient(v->state);
        struct yerr down = {0};
        if (transient && !busy && ctl_host_agent(c, v->host, &down)) {
            /* (on a host that is down it waits for the host) */
            remove_file(c, v->host, "path", v->path);
            store_volume_delete(c->store, v->id);
            bool creating = v->state == VOL_CREATING;
            ctl_event(c, "volume", v->name, creating ? "create" : "delete",
                      creating ? "error" : "ok", "%s",
                      creating ? "rolled back: yund stopped before it finished"
                               : "finished after yund restart");
            continue;
        }
        const char *base = strrchr(v->path, '/');
        base = base ? base + 1 : v->path;
        known[nk++] = base;
        if (busy) {
            snprintf(parts[i], sizeof parts[i], "%s.part", base);
            known[nk++] = parts[i];
        }
    }
    if (ok) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/pools/default", c->cfg->state_dir);
        pool_remove_orphans(dir, known, nk, on_orphan, c);
    }
    free(known);
    free(parts);
    free(vs);
}
