/*
 * routes_vms.c - the /v1/vms rows: list (cached), create, show, delete,
 * the lifecycle actions and the console log; and the VM's JSON shape.
 * The body of create is checked by body_vms.c.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "compute/console_log.h"
#include "compute/qemu_argv.h"
#include "lib/jsonw.h"
#include "lib/util.h"

#include <event2/buffer.h>
#include <errno.h>
#include <event2/http.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_write_json(struct jw *w, struct engine *e, const struct vm_rec *vm, bool live, bool uptime)
{
    int64_t now = now_ms();
    jw_obj_open(w);
    jw_kv_str(w, "id", vm->id);
    jw_kv_str(w, "name", vm->name);
    jw_kv_str(w, "image", vm->image);
    jw_kv_int(w, "cpus", vm->cpus);
    jw_kv_int(w, "memory_mb", (int64_t)vm->memory_mb);
    jw_kv_int(w, "disk_bytes", (int64_t)vm->disk_bytes);
    jw_kv_str(w, "cmdline", vm->cmdline);
    jw_kv_str(w, "machine", vm->machine);
    jw_kv_str(w, "accel", vm->accel);
    jw_kv_str(w, "accel_used", vm->accel_used);
    jw_kv_str(w, "restart", restart_policy_name(vm->restart));
    jw_kv_int(w, "cpu_weight", vm->cpu_weight);
    jw_kv_int(w, "cpu_quota_us", (int64_t)vm->cpu_quota_us);
    jw_kv_int(w, "cpu_period_us", (int64_t)vm->cpu_period_us);
    jw_kv_str(w, "cpuset", vm->cpuset);
    jw_kv_str(w, "desired", vm_desired_name(vm->desired));
    jw_kv_str(w, "state", vm_state_name(vm->state));
    jw_kv_int(w, "pid", vm->pid);
    jw_kv_int(w, "created_at", vm->created_at);
    jw_kv_int(w, "started_at", vm->started_at);
    if (uptime)
        jw_kv_int(w, "uptime_s", vm->started_at ? (now - vm->started_at) / 1000 : 0);
    jw_kv_int(w, "restarts", vm->restarts);
    jw_kv_str(w, "last_error", vm->last_error);
    jw_kv_str(w, "hostname", vm->hostname);
    jw_key(w, "cloud_init");
    jw_bool(w, vm->seed);
    jw_kv_str(w, "disk", vm->disk); /* the active layer (snapshots move it) */
    if (live) {
        char status[32], path[512];
        engine_vm_live_status(e, vm, status, sizeof(status));
        jw_kv_str(w, "qmp_status", status);
        if (engine_vm_path(e, vm, NULL, path, sizeof(path)) == 0)
            jw_kv_str(w, "directory", path);
        if (engine_vm_path(e, vm, VMDIR_CONSOLE, path, sizeof(path)) == 0)
            jw_kv_str(w, "console_socket", path);
        if (engine_vm_path(e, vm, VMDIR_CONLOG, path, sizeof(path)) == 0)
            jw_kv_str(w, "console_log", path);
        write_guest_facts(w, e, vm);
        /* its attached volumes and how many snapshots it has */
        struct volume_rec *vs;
        struct snapshot_rec *ss;
        size_t n;
        jw_key(w, "volumes");
        jw_arr_open(w);
        if (store_volume_list_attached(e->store, vm->id, &vs, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                jw_str(w, vs[i].name);
            free(vs);
        }
        jw_arr_close(w);
        if (store_snapshot_list(e->store, vm->id, &ss, &n) == 0) {
            jw_kv_int(w, "snapshots", (int64_t)n);
            free(ss);
        }
    }
    jw_obj_close(w);
}

static void reply_vm(struct hreq *req, int status, struct engine *e, const struct vm_rec *vm,
                     bool live)
{
    struct jw w;
    jw_init(&w);
    vm_write_json(&w, e, vm, live, true);
    reply_jw(req, status, &w);
}

static void vm_list(struct route_ctx *c)
{
    struct vm_rec *vms;
    size_t n;
    struct api *a = c->api;
    struct engine *e = a->eng;
    uint64_t gen = store_vm_generation(e->store);
    if (!a->vm_list || a->vm_list_gen != gen) {
        if (store_vm_list(e->store, &vms, &n) != 0) {
            reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
            return;
        }
        struct jw w;
        jw_init(&w);
        jw_obj_open(&w);
        jw_key(&w, "vms");
        jw_arr_open(&w);
        for (size_t i = 0; i < n; i++)
            vm_write_json(&w, e, &vms[i], false, false);
        jw_arr_close(&w);
        jw_obj_close(&w);
        free(vms);
        if (w.oom) {
            jw_free(&w);
            reply_errorf(c->req, YE_INTERNAL, "out of memory");
            return;
        }
        free(a->vm_list);
        a->vm_list = w.buf; /* the cache owns the text now */
        a->vm_list_len = w.len;
        a->vm_list_gen = gen;
    }
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, a->vm_list, a->vm_list_len);
    evbuffer_add(buf, "\n", 1);
    evhttp_add_header(hreq_output_headers(c->req), "Content-Type", "application/json");
    hreq_send(c->req, 200, buf);
    evbuffer_free(buf);
}

/* Offsets are positions in all the guest ever printed, so a follower goes
 * on seamlessly when console_log.c cuts the file back to its cap. */
static void vm_console(struct route_ctx *c)
{
    char path[512];
    struct vm_rec vm;
    if (!route_vm(c, &vm))
        return;
    engine_vm_path(c->api->eng, &vm, VMDIR_CONLOG, path, sizeof(path));
    uint64_t offset = 0, limit = 1 << 20;
    const char *o = query_get(c, "offset"), *l = query_get(c, "limit");
    if ((o && parse_u64(o, 0, UINT64_MAX >> 1, &offset) < 0) ||
        (l && parse_u64(l, 1, 16 << 20, &limit) < 0)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "offset and limit must be whole numbers");
        return;
    }
    /* A "tail" request (offset past the end) is clamped to the end. */
    struct console_chunk ch;
    if (console_log_read(path, offset, limit, &ch) < 0) {
        reply_errorf(c->req, YE_INTERNAL, "cannot read the console log: %s", strerror(errno));
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (ch.len)
        evbuffer_add(buf, ch.data, ch.len);
    free(ch.data);
    char num[32];
    struct evkeyvalq *h = hreq_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.next);
    evhttp_add_header(h, "X-Yun-Next-Offset", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.end);
    evhttp_add_header(h, "X-Yun-Log-Size", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.start);
    evhttp_add_header(h, "X-Yun-Log-Start", num);
    hreq_send(c->req, 200, buf);
    evbuffer_free(buf);
}

static void vm_create(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_spec s;
    struct vm_rec vm;
    if (vm_spec_from_json(c->body, &s, &err) < 0 ||
        engine_vm_create(c->api->eng, &s, &vm, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_vm(c->req, 201, c->api->eng, &vm, false);
}

static void vm_show(struct route_ctx *c)
{
    struct vm_rec vm;
    if (route_vm(c, &vm))
        reply_vm(c->req, 200, c->api->eng, &vm, true);
}

static void vm_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    const char *f = query_get(c, "force");
    bool force = f && (!strcmp(f, "true") || !strcmp(f, "1"));
    if (engine_vm_delete(c->api->eng, name, force, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
}

static void vm_act(struct route_ctx *c, enum vm_action a)
{
    struct yerr err = {0};
    struct vm_rec vm;
    if (engine_vm_action(c->api->eng, route_param(c, "name"), a, false, &vm, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_vm(c->req, 200, c->api->eng, &vm, false);
}

static void vm_start(struct route_ctx *c)
{
    vm_act(c, ACT_START);
}

static void vm_stop(struct route_ctx *c)
{
    vm_act(c, ACT_STOP);
}

static void vm_force_stop(struct route_ctx *c)
{
    vm_act(c, ACT_FORCE_STOP);
}

static void vm_reboot(struct route_ctx *c)
{
    vm_act(c, ACT_REBOOT);
}

static void vm_pause(struct route_ctx *c)
{
    vm_act(c, ACT_PAUSE);
}

static void vm_resume(struct route_ctx *c)
{
    vm_act(c, ACT_RESUME);
}

const struct route routes_vms[] = {
    {EVHTTP_REQ_GET, "/v1/vms", vm_list, 0, "List VMs (ordered by name)", NULL},
    {EVHTTP_REQ_POST, "/v1/vms", vm_create, ROUTE_BODY,
     "Create a VM (and start it when start is true)", check_vm_create},
    {EVHTTP_REQ_GET, "/v1/vms/{name}", vm_show, 0, "Show a VM, with live QMP status", NULL},
    {EVHTTP_REQ_DELETE, "/v1/vms/{name}", vm_delete, 0,
     "Delete a VM and its files (refused while it has a QEMU unless force)", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/start", vm_start, 0, "Start a VM", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/stop", vm_stop, 0,
     "Ask a VM's guest to power off (answers at once with state stopping)", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/force-stop", vm_force_stop, 0, "End a VM's QEMU now",
     NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/reboot", vm_reboot, 0, "Reset a running VM", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/pause", vm_pause, 0, "Pause a running VM's vCPUs",
     NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/actions/resume", vm_resume, 0, "Resume a paused VM", NULL},
    {EVHTTP_REQ_GET, "/v1/vms/{name}/console", vm_console, 0,
     "Bytes of the persistent serial console log", NULL},
};
const size_t routes_vms_count = sizeof(routes_vms) / sizeof(routes_vms[0]);
