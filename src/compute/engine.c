/*
 * engine.c - the engine's shared plumbing: set-up and tear-down, the event
 * log's hand-off to the controller, the in-memory runtime list and per-VM
 * paths.
 */
#include "compute/engine.h"
#include "compute/accel.h"
#include "compute/cpu_probe.h"
#include "compute/cgroup_remove.h"
#include "compute/guest.h"
#include "compute/qmp.h"
#include "lib/log.h"
#include "lib/util.h"
#include "storage/volumes.h"

#include <errno.h>
#include <signal.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Children are reaped by the job facility (lib/job.c). */
static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
}

static uint64_t meminfo_total(void)
{
    char *mi = read_file("/proc/meminfo", 1 << 16, NULL);
    unsigned long long kb = 0;
    if (mi) {
        char *p = strstr(mi, "MemTotal:");
        if (p)
            sscanf(p + 9, "%llu", &kb);
        free(mi);
    }
    return (uint64_t)kb * 1024;
}

void engine_vm_cgroup(const struct vm_rec *vm, char out[48])
{
    snprintf(out, 48, "vm-%.36s", vm->id);
}

/* This yund's id: made once, kept in the state directory. Two yunds on one
 * machine (two agents of a cluster) get different cgroup parents from it. */
static int load_yund_id(const char *state_dir, char out[16])
{
    char path[512];
    if (snprintf_checked(path, sizeof(path), "%s/yund.id", state_dir) < 0)
        return -1;
    char *s = read_file(path, 64, NULL);
    if (s) {
        size_t n = strspn(s, "0123456789abcdef");
        if (n == 12) {
            memcpy(out, s, 12);
            out[12] = 0;
            free(s);
            return 0;
        }
        free(s);
    }
    char uuid[37];
    uuid_generate_str(uuid);
    snprintf(out, 16, "%.8s%.4s", uuid, uuid + 9);
    char line[16];
    int n = snprintf(line, sizeof(line), "%s\n", out);
    return write_file_atomic(path, line, (size_t)n, 0600);
}

int engine_init(struct engine *e, struct event_base *base, const struct yun_config *cfg, char *err,
                size_t errlen)
{
    memset(e, 0, sizeof(*e));
    e->base = base;
    e->cfg = cfg;
    if (snprintf_checked(e->vms_dir, sizeof(e->vms_dir), "%s/vms", cfg->state_dir) < 0 ||
        snprintf_checked(e->images_dir, sizeof(e->images_dir), "%s", cfg->images_dir) < 0) {
        snprintf(err, errlen, "state_dir too long");
        return -1;
    }
    if (mkdir_p(e->vms_dir, 0700) < 0 || mkdir_p(e->images_dir, 0755) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", e->vms_dir, strerror(errno));
        return -1;
    }
    if (volumes_init(cfg, err, errlen) < 0)
        return -1;
    if (load_yund_id(cfg->state_dir, e->yund_id) < 0) {
        snprintf(err, errlen, "cannot write %s/yund.id: %s", cfg->state_dir, strerror(errno));
        return -1;
    }
    char parent[32];
    snprintf(parent, sizeof(parent), "yun/y-%s", e->yund_id);
    if (cg_detect(&e->cg) < 0)
        log_warn("no usable cgroup hierarchy: CPU and memory limits will not be enforced");
    else if (cg_set_parent(&e->cg, parent) < 0)
        log_warn("bad cgroup parent %s", parent);
    else
        log_info("cgroups: %s, VMs under %s",
                 e->cg.mode == CG_V2 ? "v2 (unified)" : "v1 (per controller)", parent);
    e->host_cpus = cfg->host_cpus ? cfg->host_cpus : (int)sysconf(_SC_NPROCESSORS_ONLN);
    e->host_memory = cfg->host_memory ? cfg->host_memory : meminfo_total();
    snprintf(e->accel, sizeof(e->accel), "%s", accel_choose(cfg->accel));
    log_info("host: %d cpus, %llu MiB, accelerator %s (requested %s)", e->host_cpus,
             (unsigned long long)(e->host_memory >> 20), e->accel, cfg->accel);
    /* before the loop serves: about 0.2 s, once */
    char perr[256];
    if (cpu_probe_run(cfg->qemu_binary, e->accel, e->cpu_models, sizeof e->cpu_models, perr,
                      sizeof perr) < 0)
        log_warn("CPU models: %s (VMs get no named model on this host)", perr);
    e->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, e);
    event_add(e->sigchld, NULL);
    return 0;
}

struct engine_cgrm {
    struct engine_cgrm *next;
    struct engine *e;
    struct cg_removal *r; /* NULL until cg_remove_start returned it */
};

static void cgrm_unlink(struct engine_cgrm *n)
{
    for (struct engine_cgrm **pp = &n->e->cg_removals; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            return;
        }
    }
}

static void cgrm_done(void *ctx, int rc)
{
    struct engine_cgrm *n = ctx;
    cgrm_unlink(n);
    free(n);
}

void engine_cgroup_keep(struct engine *e, const char *group)
{
    for (struct engine_cgrm **pp = &e->cg_removals; *pp;) {
        struct engine_cgrm *n = *pp;
        if (strcmp(cg_removal_group(n->r), group)) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        cg_remove_cancel(n->r);
        free(n);
    }
}

void engine_cgroup_remove(struct engine *e, const char *group)
{
    engine_cgroup_keep(e, group); /* one removal of a group at a time */
    struct engine_cgrm *n = calloc(1, sizeof *n);
    if (!n) {
        cg_vm_destroy_once(&e->cg, group);
        return;
    }
    n->e = e;
    struct cg_removal *r = cg_remove_start(e->base, &e->cg, group, cgrm_done, n);
    if (!r)
        return; /* settled at once: cgrm_done freed n */
    n->r = r;
    n->next = e->cg_removals;
    e->cg_removals = n;
}

void engine_shutdown(struct engine *e)
{
    /* a removal still waiting on a busy group is dropped: the next start
     * reuses the group, a delete removes it */
    while (e->cg_removals) {
        struct engine_cgrm *n = e->cg_removals;
        e->cg_removals = n->next;
        cg_remove_cancel(n->r);
        free(n);
    }
    while (e->rts)
        engine_rt_drop(e, e->rts);
    if (e->sigchld)
        event_free(e->sigchld);
    e->sigchld = NULL;
}

void engine_notify(struct engine *e, const char *type, json_t *ev)
{
    if (e->notify && ev)
        e->notify(e->notify_ctx, type, ev);
    json_decref(ev);
}

void engine_reconcile_soon(struct engine *e)
{
    engine_notify(e, "host.reconcile", json_object());
}

/* ---- runtime list ---- */

struct vm_rt *engine_rt_find(struct engine *e, const char *id)
{
    for (struct vm_rt *r = e->rts; r; r = r->next)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

struct vm_rt *engine_rt_get(struct engine *e, const struct vm_rec *vm)
{
    struct vm_rt *r = engine_rt_find(e, vm->id);
    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->eng = e;
    snprintf(r->id, sizeof(r->id), "%s", vm->id);
    snprintf(r->name, sizeof(r->name), "%s", vm->name);
    r->uid = vm->uid;
    r->next = e->rts;
    e->rts = r;
    return r;
}

void engine_rt_drop(struct engine *e, struct vm_rt *rt)
{
    if (rt->launch_abandon) /* yund stops mid-start: its row is the next run's */
        rt->launch_abandon(rt->launch);
    for (struct vm_rt **pp = &e->rts; *pp; pp = &(*pp)->next) {
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    }
    guest_forget(rt); /* cancels its agent exchanges before rt goes */
    qmp_watch_close(rt->watch);
    if (rt->exit_timer)
        event_free(rt->exit_timer);
    free(rt);
}

int engine_vm_disk_path(struct engine *e, const struct vm_rec *vm, const char *file, char *buf,
                        size_t len)
{
    if (!vm->disk_dir[0])
        return engine_vm_path(e, vm, file, buf, len);
    if (file)
        return snprintf_checked(buf, len, "%s/%s", vm->disk_dir, file) < 0 ? -1 : 0;
    return snprintf_checked(buf, len, "%s", vm->disk_dir) < 0 ? -1 : 0;
}

int engine_vm_path(struct engine *e, const struct vm_rec *vm, const char *file, char *buf,
                   size_t len)
{
    if (file)
        return snprintf_checked(buf, len, "%s/%s/%s", e->vms_dir, vm->id, file) < 0 ? -1 : 0;
    return snprintf_checked(buf, len, "%s/%s", e->vms_dir, vm->id) < 0 ? -1 : 0;
}
