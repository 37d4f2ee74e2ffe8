/*
 * routes_vms.c - /v1/vms: list, create, show, delete, actions, console log.
 *
 *   GET    /v1/vms                      list
 *   POST   /v1/vms                      create (201), body: vm spec
 *   GET    /v1/vms/{name}               show, with live QMP status
 *   DELETE /v1/vms/{name}[?force=true]  delete
 *   POST   /v1/vms/{name}/actions/{start|stop|force-stop|reboot|pause|resume}
 *   GET    /v1/vms/{name}/console?offset=N&limit=N   console log bytes (text/plain)
 */
#include "api/api.h"
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

static int get_int(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out,
                   struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be an integer", key);
    int64_t x = json_integer_value(v);
    if (x < min || x > max)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be in %lld..%lld, not %lld", key,
                        (long long)min, (long long)max, (long long)x);
    *out = x;
    return 0;
}

static int get_str(json_t *body, const char *key, char *dst, size_t len, struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a string", key);
    if (strlen(json_string_value(v)) >= len)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is longer than %zu characters", key, len - 1);
    snprintf(dst, len, "%s", json_string_value(v));
    return 0;
}

/* Size fields take an integer number of bytes/MiB or a string like "512M". */
static int get_size(json_t *body, const char *key, uint64_t unit, uint64_t *out, struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (uint64_t)json_integer_value(v) <= UINT64_MAX / unit) {
        *out = (uint64_t)json_integer_value(v) * unit;
        return 0;
    }
    uint64_t b;
    if (json_is_string(v) && parse_size(json_string_value(v), &b) == 0) {
        *out = b;
        return 0;
    }
    return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a size such as \"512M\" or \"4G\"", key);
}

static int spec_from_json(json_t *b, struct vm_spec *s, struct yerr *err)
{
    static const char *const known[] = {"name",         "image",         "cpus",       "memory",
                                        "memory_mb",    "disk",          "disk_bytes", "cmdline",
                                        "machine",      "accel",         "restart",    "cpu_weight",
                                        "cpu_quota_us", "cpu_period_us", "cpuset",     "start",
                                        "hostname",     "user_data",     "ssh_keys",   NULL};
    vm_spec_defaults(s);
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "request body with name and image required");
    if (!body_keys_known(b, known, err))
        return -1;
    if (!json_is_string(json_object_get(b, "name")))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name is required (a string)");
    if (!json_is_string(json_object_get(b, "image")))
        return yerr_set(err, YE_INVALID_ARGUMENT, "image is required (a string)");
    int64_t cpus = s->cpus, weight = 0, quota = 0, period = 0;
    uint64_t mem = s->memory_mb << 20, disk = 0;
    char restart[16] = "no";
    if (get_str(b, "name", s->name, sizeof(s->name), err) < 0 ||
        get_str(b, "image", s->image, sizeof(s->image), err) < 0 ||
        get_int(b, "cpus", -1000000, 1000000, &cpus, err) < 0 ||
        get_size(b, "memory", 1, &mem, err) < 0 ||
        get_size(b, "memory_mb", 1ULL << 20, &mem, err) < 0 ||
        get_size(b, "disk", 1, &disk, err) < 0 || get_size(b, "disk_bytes", 1, &disk, err) < 0 ||
        get_str(b, "cmdline", s->cmdline, sizeof(s->cmdline), err) < 0 ||
        get_str(b, "machine", s->machine, sizeof(s->machine), err) < 0 ||
        get_str(b, "accel", s->accel, sizeof(s->accel), err) < 0 ||
        get_str(b, "restart", restart, sizeof(restart), err) < 0 ||
        get_int(b, "cpu_weight", 0, 1000000, &weight, err) < 0 ||
        get_int(b, "cpu_quota_us", 0, 1LL << 40, &quota, err) < 0 ||
        get_int(b, "cpu_period_us", 0, 1LL << 40, &period, err) < 0 ||
        get_str(b, "cpuset", s->cpuset, sizeof(s->cpuset), err) < 0)
        return -1;
    if (get_str(b, "hostname", s->hostname, sizeof(s->hostname), err) < 0)
        return -1;
    json_t *ud = json_object_get(b, "user_data");
    if (ud && !json_is_string(ud))
        return yerr_set(err, YE_INVALID_ARGUMENT, "user_data must be a string");
    s->user_data = json_string_value(ud);
    json_t *keys = json_object_get(b, "ssh_keys");
    if (keys) {
        /* one string per key; joined one per line into the body we own */
        if (!json_is_array(keys))
            return yerr_set(err, YE_INVALID_ARGUMENT, "ssh_keys must be an array of strings");
        size_t i;
        json_t *k;
        char *joined = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&joined, &len);
        json_array_foreach(keys, i, k)
        {
            if (!json_is_string(k) || strchr(json_string_value(k), '\n')) {
                fclose(f);
                free(joined);
                return yerr_set(err, YE_INVALID_ARGUMENT,
                                "ssh_keys must be an array of one-line strings");
            }
            fprintf(f, "%s\n", json_string_value(k));
        }
        fclose(f);
        json_object_set_new(b, "_ssh_keys_joined", json_string(joined ? joined : ""));
        free(joined);
        s->ssh_keys = json_string_value(json_object_get(b, "_ssh_keys_joined"));
    }
    json_t *start = json_object_get(b, "start");
    if (start && !json_is_boolean(start))
        return yerr_set(err, YE_INVALID_ARGUMENT, "start must be true or false");
    s->start = json_is_true(start);
    if (restart_policy_parse(restart, &s->restart) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "restart must be no, on-failure or always, not '%s'", restart);
    if (mem % (1ULL << 20))
        return yerr_set(err, YE_INVALID_ARGUMENT, "memory must be a whole number of MiB");
    s->cpus = (int)cpus;
    s->memory_mb = mem >> 20;
    s->disk_bytes = disk;
    s->cpu_weight = (unsigned)weight;
    s->cpu_quota_us = (uint64_t)quota;
    s->cpu_period_us = (uint64_t)period;
    return 0;
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
static void vm_console(struct route_ctx *c, const struct vm_rec *vm)
{
    char path[512];
    engine_vm_path(c->api->eng, vm, VMDIR_CONLOG, path, sizeof(path));
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

void routes_vms(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct vm_rec vm;
    if (c->nparts == 1) {
        if (c->method == EVHTTP_REQ_GET) {
            vm_list(c);
        } else if (c->method == EVHTTP_REQ_POST) {
            struct vm_spec s;
            if (spec_from_json(c->body, &s, &err) < 0 || engine_vm_create(e, &s, &vm, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_vm(c->req, 201, e, &vm, false);
        } else {
            reply_errorf(c->req, YE_METHOD_NOT_ALLOWED, "use GET or POST on /v1/vms");
        }
        return;
    }
    const char *name = c->parts[1];
    if (c->nparts == 2) {
        if (c->method == EVHTTP_REQ_GET) {
            if (engine_vm_get(e, name, &vm, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_vm(c->req, 200, e, &vm, true);
        } else if (c->method == EVHTTP_REQ_DELETE) {
            const char *f = query_get(c, "force");
            bool force = f && (!strcmp(f, "true") || !strcmp(f, "1"));
            if (engine_vm_delete(e, name, force, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
        } else {
            reply_errorf(c->req, YE_METHOD_NOT_ALLOWED, "use GET or DELETE on /v1/vms/NAME");
        }
        return;
    }
    if (c->nparts == 4 && !strcmp(c->parts[2], "actions")) {
        enum vm_action a;
        if (c->method != EVHTTP_REQ_POST) {
            reply_errorf(c->req, YE_METHOD_NOT_ALLOWED, "actions take POST");
        } else if (vm_action_parse(c->parts[3], &a) < 0 || a == ACT_DELETE) {
            reply_errorf(c->req, YE_NOT_FOUND,
                         "unknown action '%s' (start, stop, force-stop, reboot, pause, resume)",
                         c->parts[3]);
        } else if (engine_vm_action(e, name, a, false, &vm, &err) < 0) {
            reply_error(c->req, &err);
        } else {
            reply_vm(c->req, 200, e, &vm, false);
        }
        return;
    }
    if (c->nparts >= 3 && !strcmp(c->parts[2], "snapshots")) {
        routes_vm_snapshots(c, name);
        return;
    }
    if (c->nparts == 3 && !strcmp(c->parts[2], "exec") && c->method == EVHTTP_REQ_POST) {
        if (engine_vm_get(e, name, &vm, &err) < 0)
            reply_error(c->req, &err);
        else
            route_vm_exec(c, &vm);
        return;
    }
    if (c->nparts == 3 && !strcmp(c->parts[2], "metrics") && c->method == EVHTTP_REQ_GET) {
        if (engine_vm_get(e, name, &vm, &err) < 0) {
            reply_error(c->req, &err);
        } else {
            char obj[72];
            snprintf(obj, sizeof(obj), "vm/%s", vm.name);
            route_object_metrics(c, obj, false);
        }
        return;
    }
    if (c->nparts == 3 && !strcmp(c->parts[2], "console") && c->method == EVHTTP_REQ_GET) {
        if (engine_vm_get(e, name, &vm, &err) < 0)
            reply_error(c->req, &err);
        else
            vm_console(c, &vm);
        return;
    }
    reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/vms");
}
