/*
 * routes_vms.c - the /v1/vms rows: create, show, delete (the list is
 * vms_list.c),
 * the lifecycle actions and the console log; and the VM's JSON shape.
 * The body of create is checked by body_vms.c.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "api/routes_tasks.h"
#include "agent/console_bridge.h"
#include "ctl/console.h"
#include "ctl/hosts.h"
#include "ctl/place.h"
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

void vm_write_json(struct jw *w, struct ctl *c, const struct vm_rec *vm, bool uptime)
{
    int64_t now = now_ms();
    jw_obj_open(w);
    jw_kv_str(w, "id", vm->id);
    jw_kv_str(w, "name", vm->name);
    /* its host: the name (the all-in-one's own for a row from before the
     * cluster) and the id */
    jw_kv_str(w, "host", ctl_host_name(c, vm->host));
    jw_kv_str(w, "host_id", vm->host[0] ? vm->host : ctl_local_host(c));
    jw_kv_str(w, "image", vm->image);
    jw_kv_int(w, "cpus", vm->cpus);
    jw_kv_int(w, "memory_mb", (int64_t)vm->memory_mb);
    /* memory policy: a row from before it has memory_min 0, its memory */
    jw_kv_int(w, "memory_min_mb", (int64_t)(vm->memory_min_mb ? vm->memory_min_mb : vm->memory_mb));
    jw_kv_int(w, "memory_swap_mb", vm->memory_swap_mb);          /* -1 = the host's default */
    jw_kv_int(w, "memory_high_mb", (int64_t)vm->memory_high_mb); /* 0 = none */
    jw_key(w, "memory_lock");
    jw_bool(w, vm->memory_lock);
    jw_key(w, "merge");
    jw_bool(w, !vm->no_merge);
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
    jw_kv_str(w, "cpu_pin", vm->cpu_pin);
    jw_kv_str(w, "emulator_pin", vm->emulator_pin);
    jw_kv_str(w, "cpu_model", vm->cpu_model); /* "" = a row from before: host or max */
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
    jw_kv_str(w, "disk", vm->disk);   /* the active layer (snapshots move it) */
    jw_kv_str(w, "group", vm->group); /* placement (ctl/place.h) */
    jw_kv_str(w, "requires", vm->requires);
    jw_kv_str(w, "pool", vm->pool); /* its disk's pool ("" = its directory) */
    jw_key(w, "ha");
    jw_bool(w, vm->ha);
    jw_kv_str(w, "ha_from", vm->ha_from);
}

/* The guest facts the agent's cache holds (guest: null when its agent is
 * not up); a guest that does not answer never holds up a reader. */
static void write_guest_facts(struct jw *w, json_t *g)
{
    jw_key(w, "guest_agent");
    jw_bool(w, json_is_object(g));
    if (!json_is_object(g))
        return;
    jw_key(w, "guest_agent_answering");
    jw_bool(w, json_is_true(json_object_get(g, "answering")));
    jw_kv_int(w, "guest_agent_pending", json_integer_value(json_object_get(g, "pending")));
    jw_kv_int(w, "guest_facts_at", json_integer_value(json_object_get(g, "fetched_at")));
    static const char *const strs[][2] = {
        {"error", "guest_agent_error"}, {"os", "guest_os"}, {"hostname", "guest_hostname"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = json_string_value(json_object_get(g, strs[i][0]));
        if (v)
            jw_kv_str(w, strs[i][1], v);
    }
    json_t *ips = json_object_get(g, "ip_addresses");
    if (json_is_array(ips)) {
        jw_key(w, "ip_addresses");
        jw_arr_open(w);
        size_t i;
        json_t *ip;
        json_array_foreach(ips, i, ip) jw_str(w, json_string_value(ip));
        jw_arr_close(w);
    }
}

static void reply_vm(struct hreq *req, struct ctl *c, int status, const struct vm_rec *vm)
{
    struct jw w;
    jw_init(&w);
    vm_write_json(&w, c, vm, true);
    jw_obj_close(&w);
    reply_jw(req, status, &w);
}

/* The row and the placement's explanation (create with explain: true). */
static void reply_vm_placed(struct hreq *req, struct ctl *c, int status, const struct vm_rec *vm,
                            json_t *ex)
{
    struct jw w;
    jw_init(&w);
    vm_write_json(&w, c, vm, true);
    jw_obj_close(&w);
    json_t *j = w.oom ? NULL : json_loadb(w.buf, w.len, 0, NULL);
    jw_free(&w);
    if (!j) {
        reply_errorf(req, YE_INTERNAL, "out of memory");
        return;
    }
    json_object_set(j, "placement", ex ? ex : json_null());
    reply_json(req, status, j);
}

/* ---- show: the row plus the agent's live facts (vm.status) ---- */

struct show_wait {
    struct api *api;
    struct hreq *req;
    struct vm_rec vm;
};

static void show_closed(struct hreq *req, void *arg)
{
    struct show_wait *sw = arg;
    ctl_forget(sw->api->ctl, sw);
    free(sw);
}

static void on_status(void *ctx, json_t *st, const struct yerr *err)
{
    struct show_wait *sw = ctx;
    struct ctl *c = sw->api->ctl;
    const struct vm_rec *vm = &sw->vm;
    struct jw w;
    jw_init(&w);
    vm_write_json(&w, c, vm, true);
    char status[32];
    ctl_vm_qmp_status(vm, err ? NULL : st, status, sizeof(status));
    jw_kv_str(&w, "qmp_status", status);
    struct ctl_vm_paths p;
    ctl_vm_paths(c, vm, &p);
    if (p.dir[0])
        jw_kv_str(&w, "directory", p.dir);
    if (p.console_socket[0])
        jw_kv_str(&w, "console_socket", p.console_socket);
    if (p.console_log[0])
        jw_kv_str(&w, "console_log", p.console_log);
    write_guest_facts(&w, err || !vm_state_has_process(vm->state) ? NULL
                                                                  : json_object_get(st, "guest"));
    /* its attached volumes and how many snapshots it has */
    json_t *vols = ctl_vm_volume_names(c, vm);
    jw_key(&w, "volumes");
    jw_arr_open(&w);
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) jw_str(&w, json_string_value(v));
    jw_arr_close(&w);
    json_decref(vols);
    int nsnap = ctl_vm_snapshot_count(c, vm);
    if (nsnap >= 0)
        jw_kv_int(&w, "snapshots", nsnap);
    jw_obj_close(&w);
    hreq_set_closecb(sw->req, NULL, NULL);
    reply_jw(sw->req, 200, &w);
    free(sw);
}

static void vm_show_live(struct route_ctx *c, const struct vm_rec *vm)
{
    struct show_wait *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    sw->api = c->api;
    sw->req = c->req;
    sw->vm = *vm;
    hreq_set_closecb(c->req, show_closed, sw);
    ctl_vm_status(c->api->ctl, vm, on_status, sw); /* answers from the loop, never waits */
}

/* Offsets are positions in all the guest ever printed, so a follower goes
 * on seamlessly when the host cuts the file back to its cap. The bytes come
 * from the VM's host (the agent's vm.console_read, through ctl/console.c);
 * the request is held until they are there. */
struct console_wait {
    struct api *api;
    struct hreq *req;
};

static void console_closed(struct hreq *req, void *arg)
{
    struct console_wait *w = arg;
    /* The client left; httpd frees the request. */
    ctl_forget(w->api->ctl, w);
    free(w);
}

static void on_console(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct console_wait *w = ctx;
    hreq_set_closecb(w->req, NULL, NULL);
    struct ctl_console_chunk ch;
    struct yerr err;
    if (aerr || ctl_console_decode(r, &ch, &err) < 0) {
        reply_error(w->req, aerr ? aerr : &err);
        free(w);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (ch.len)
        evbuffer_add(buf, ch.data, ch.len);
    free(ch.data);
    char num[32];
    struct evkeyvalq *h = hreq_output_headers(w->req);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.next);
    evhttp_add_header(h, "X-Yun-Next-Offset", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.end);
    evhttp_add_header(h, "X-Yun-Log-Size", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ch.start);
    evhttp_add_header(h, "X-Yun-Log-Start", num);
    hreq_send(w->req, 200, buf);
    evbuffer_free(buf);
    free(w);
}

/* With "Upgrade: yun-console": the live serial console, through the VM's
 * host's agent (the local hub in the all-in-one, an upgraded connection to
 * the host's agent from a controller), spliced to this connection. */
static void vm_console_live(struct route_ctx *c, const struct vm_rec *vm)
{
    struct yerr err;
    if (console_upgrade_check(c->req, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    /* its host down first (503, as every call about its VMs), then its state */
    struct agent *a = ctl_vm_agent(c->api->ctl, vm, &err);
    if (!a) {
        reply_error(c->req, &err);
        return;
    }
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        reply_errorf(c->req, YE_CONFLICT, "VM %s is %s: its console is live only while it runs",
                     vm->name, vm_state_name(vm->state));
        return;
    }
    if (console_bridge(c->req, a, vm->id, reply_error, &err) < 0)
        reply_error(c->req, &err);
}

static void vm_console(struct route_ctx *c)
{
    struct vm_rec vm;
    if (!route_vm(c, &vm))
        return;
    if (console_upgrade_asked(c->req)) {
        vm_console_live(c, &vm);
        return;
    }
    uint64_t offset = 0, limit = 1 << 20;
    const char *o = query_get(c, "offset"), *l = query_get(c, "limit");
    if ((o && parse_u64(o, 0, UINT64_MAX >> 1, &offset) < 0) ||
        (l && parse_u64(l, 1, 16 << 20, &limit) < 0)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "offset and limit must be whole numbers");
        return;
    }
    /* A "tail" request (offset past the end) is clamped to the end. */
    struct console_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->api = c->api;
    w->req = c->req;
    hreq_set_closecb(c->req, console_closed, w);
    if (!ctl_vm_console_read(c->api->ctl, &vm, offset, limit, on_console, w)) {
        hreq_set_closecb(c->req, NULL, NULL);
        ctl_forget(c->api->ctl, w);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
    }
}

/* ---- pause, resume, reboot: answered when QEMU has answered ---- */

struct action_wait {
    struct api *api;
    struct hreq *req;
    int status;    /* of the reply with the row */
    char name[64]; /* delete: answers {"deleted": name} */
    bool explain;  /* create: the reply carries "placement" */
};

static void action_closed(struct hreq *req, void *arg)
{
    struct action_wait *aw = arg;
    ctl_forget(aw->api->ctl, aw); /* the action still completes */
    free(aw);
}

static void on_action(void *ctx, const struct vm_rec *vm, const struct yerr *err)
{
    struct action_wait *aw = ctx;
    hreq_set_closecb(aw->req, NULL, NULL);
    if (err)
        reply_error_task(aw->req, err);
    else if (aw->explain && vm)
        reply_vm_placed(aw->req, aw->api->ctl, aw->status ? aw->status : 200, vm,
                        ctl_place_explain(aw->api->ctl, vm->name));
    else if (aw->name[0])
        reply_json(aw->req, 200, json_pack("{s:s}", "deleted", aw->name));
    else
        reply_vm(aw->req, aw->api->ctl, aw->status ? aw->status : 200, vm);
    free(aw);
}

static struct action_wait *action_wait_new(struct route_ctx *c)
{
    struct action_wait *aw = calloc(1, sizeof(*aw));
    if (!aw) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return NULL;
    }
    aw->api = c->api;
    aw->req = c->req;
    return aw;
}

/* After a ctl_* call that takes on_action: answered from its callback, or
 * now when it could not begin. */
static void action_wait_begun(struct route_ctx *c, struct action_wait *aw, int rc,
                              const struct yerr *err)
{
    if (rc < 0) {
        free(aw);
        reply_error_task(c->req, err);
        return;
    }
    hreq_set_closecb(c->req, action_closed, aw);
}

static void vm_action_qmp(struct route_ctx *c, const char *name, int a)
{
    struct yerr err;
    struct action_wait *aw = action_wait_new(c);
    if (aw)
        action_wait_begun(c, aw, ctl_vm_action_qmp(c->api->ctl, name, a, on_action, aw, &err),
                          &err);
}

/* Start (and create with start=true): answered when the start has
 * finished; a client that leaves does not stop it. */
static void vm_start_async(struct route_ctx *c, const char *name, int status)
{
    struct yerr err;
    struct action_wait *aw = action_wait_new(c);
    if (!aw)
        return;
    aw->status = status;
    action_wait_begun(c, aw, ctl_vm_start(c->api->ctl, name, 0, on_action, aw, &err), &err);
}

static void vm_create(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_spec s;
    if (vm_spec_from_json(c->body, &s, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    struct action_wait *aw = action_wait_new(c);
    if (!aw)
        return;
    aw->status = 201;
    aw->explain = s.explain;
    action_wait_begun(c, aw, ctl_vm_create(c->api->ctl, &s, on_action, aw, &err), &err);
}

static void vm_update(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_update u;
    struct vm_rec now;
    if (vm_update_from_json(c->body, &u, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    struct action_wait *aw = action_wait_new(c);
    if (!aw)
        return;
    int rc = ctl_vm_update(c->api->ctl, route_param(c, "name"), &u, on_action, aw, &now, &err);
    if (rc == 1) { /* a stopped VM: its row only, done already */
        free(aw);
        reply_vm(c->req, c->api->ctl, 200, &now);
        return;
    }
    action_wait_begun(c, aw, rc, &err);
}

static void vm_show(struct route_ctx *c)
{
    struct vm_rec vm;
    if (route_vm(c, &vm))
        vm_show_live(c, &vm);
}

static void vm_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    const char *f = query_get(c, "force");
    bool force = f && (!strcmp(f, "true") || !strcmp(f, "1"));
    struct action_wait *aw = action_wait_new(c);
    if (!aw)
        return;
    snprintf(aw->name, sizeof(aw->name), "%s", name);
    action_wait_begun(c, aw, ctl_vm_delete(c->api->ctl, name, force, on_action, aw, &err), &err);
}

static void vm_act(struct route_ctx *c, enum vm_action a)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (a == ACT_START) {
        vm_start_async(c, name, 200);
    } else if (ctl_vm_action_is_qmp((int)a)) {
        vm_action_qmp(c, name, (int)a);
    } else if (a == ACT_STOP || a == ACT_FORCE_STOP) {
        struct action_wait *aw = action_wait_new(c);
        if (aw)
            action_wait_begun(
                c, aw, ctl_vm_stop(c->api->ctl, name, a == ACT_FORCE_STOP, on_action, aw, &err),
                &err);
    } else {
        yerr_set(&err, YE_INVALID_ARGUMENT, "%s is not an action here", vm_action_name(a));
        reply_error_task(c->req, &err);
    }
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
    {EVHTTP_REQ_PATCH, "/v1/vms/{name}", vm_update, ROUTE_BODY,
     "Change a VM's CPU weight, quota, cpuset, pins and balloon minimum (live when it runs)",
     check_vm_update},
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
     "Bytes of the persistent serial console log, or (upgraded) the live console", NULL},
};
const size_t routes_vms_count = sizeof(routes_vms) / sizeof(routes_vms[0]);
