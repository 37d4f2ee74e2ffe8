/*
 * migrate_run.c - a live migration's forward steps (docs/cluster.md, "Live
 * migration"), each one agent call answered on the loop, nothing waited
 * for: the target's files (vm.prepare), two free ports on the target
 * (host.ports), the target QEMU (vm.launch "incoming": -incoming defer,
 * left paused), its NBD server exporting the VM's disk writable; on the
 * source an NBD client node and blockdev-mirror (sync top: the target's
 * overlay has the same backing image; copy-mode write-blocking: a guest
 * write returns once it is on both sides, so the mirror converges) until
 * the job is ready; then memory (pause-before-switchover, auto-converge,
 * max-bandwidth, downtime-limit; migrate-incoming on the target, migrate
 * on the source) until the source stops at pre-switchover; there the
 * mirror is ended with block-job-cancel (of a READY job: the copy is
 * consistent and the source keeps writing to its own disk, which a
 * rollback after this still needs; block-job-complete would pivot the
 * source onto the NBD node), its node deleted, migrate-continue; once the
 * source says completed and the target is paused, the commit: the VM row
 * (host, pid, uid) and the migrations row (committed, owner the target) in
 * one transaction. Only then is the target conted (migrate_settle.c).
 */
#include "ctl/migrate_int.h"

#include "agent/agent_wire.h"
#include "ctl/hosts.h"
#include "ctl/images_fetch.h"
#include "ctl/pools.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNLIMITED_BW      (1ULL << 40) /* bytes/s: QEMU's default is 32 MiB/s */
#define TARGET_WAIT_POLLS 150          /* 30 s for the target to show the state in */

/* A failed step, or a cancel asked: the move rolls back. */
bool mig_bail(struct mig *m, const struct yerr *err)
{
    if (err) {
        mig_fail(m, err);
        return true;
    }
    if (m->cancel) {
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "migration of vm '%s' cancelled", m->row.vm_name);
        mig_fail(m, &e);
        return true;
    }
    return false;
}

static void qemu_said(struct yerr *e, const char *what, json_t *res)
{
    const char *d = json_string_value(json_object_get(res, "error-desc"));
    yerr_set(e, YE_QEMU_ERROR, "%s%s%s", what, d ? ": " : "", d ? d : "");
}

/* ---- commit ---- */

void mig_commit(struct mig *m, bool running, const char *outcome)
{
    struct ctl *c = m->c;
    struct vm_rec vm;
    struct yerr e = {0};
    if (store_vm_get(c->store, m->row.vm_id, &vm) != 0) {
        yerr_set(&e, YE_CONFLICT, "vm '%s' is gone", m->row.vm_name);
        mig_fail(m, &e);
        return;
    }
    snprintf(vm.host, sizeof vm.host, "%s", m->row.target);
    vm.pid = running ? m->row.target_pid : 0;
    vm.uid = running ? m->row.target_uid : 0; /* stopped: claimed at its start there */
    if (running) {
        vm.state = VM_RUNNING;
        vm.desired = WANT_RUNNING;
    }
    vm.updated_at = now_ms();
    struct migration_rec r = m->row;
    snprintf(r.phase, sizeof r.phase, "committed");
    snprintf(r.owner, sizeof r.owner, "%s", r.target);
    if (outcome)
        snprintf(r.outcome, sizeof r.outcome, "%s", outcome);
    r.updated_at = now_ms();
    /* THE commit: the VM's host, its volumes' and the row's phase change
     * together */
    if (store_begin(c->store) != 0 || store_vm_update(c->store, &vm) != 0 ||
        mig_volumes_commit(m) != 0 || store_migration_update(c->store, &r) != 0 ||
        store_commit(c->store) != 0) {
        yerr_db(&e, store_errmsg(c->store));
        store_rollback(c->store);
        mig_fail(m, &e);
        return;
    }
    m->row = r;
    FAILPOINT("migrate.after_commit");
    mig_settle(m); /* forward: cont the target (a live move), end the source */
}

/* ---- switchover ---- */

static void target_state(struct mig *m, json_t *res, const struct yerr *err);
static void ask_target(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_qmp(m, m->row.target, "query-status", NULL, target_state);
}

static void nbd_stopped(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (err)
        log_warn("migration of vm %s: nbd-server-stop on the target: %s", m->row.vm_name,
                 err->message);
    if (mig_bail(m, NULL))
        return;
    mig_commit(m, true, NULL);
}

static void target_state(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *st = json_string_value(json_object_get(res, "status"));
    if (st && !strcmp(st, "paused")) {
        FAILPOINT("migrate.after_switchover");
        if (!m->ndisks)
            nbd_stopped(m, NULL, NULL); /* it never served */
        else
            mig_qmp(m, m->row.target, "nbd-server-stop", NULL, nbd_stopped);
        return;
    }
    if (st && !strcmp(st, "inmigrate") && ++m->polls < TARGET_WAIT_POLLS) {
        mig_later(m, 10, ask_target);
        return;
    }
    struct yerr e;
    yerr_set(&e, YE_QEMU_ERROR, "the target's qemu is %s, not paused with the vm's state",
             st ? st : "?");
    mig_fail(m, &e);
}

static void outcome(struct mig *m, json_t *res)
{
    json_t *ram = json_object_get(res, "ram");
    json_t *o =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "total_ms",
                  json_integer_value(json_object_get(res, "total-time")), "downtime_ms",
                  json_integer_value(json_object_get(res, "downtime")), "setup_ms",
                  json_integer_value(json_object_get(res, "setup-time")), "ram_bytes",
                  json_integer_value(json_object_get(ram, "transferred")), "disk_bytes",
                  json_integer_value(json_object_get(m->detail, "disk_len")), "yun_ms",
                  (json_int_t)(monotonic_ms() - m->t0), "mirror_ms", (json_int_t)m->mirror_ms);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (t)
        snprintf(m->row.outcome, sizeof m->row.outcome, "%s", t);
    free(t);
    json_decref(o);
}

static void completion(struct mig *m, json_t *res, const struct yerr *err);
static void ask_completion(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_qmp(m, m->row.source, "query-migrate", NULL, completion);
}

static void completion(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *st = json_string_value(json_object_get(res, "status"));
    if (st && !strcmp(st, "completed")) {
        m->src_completed = true;
        outcome(m, res);
        mig_save(m, NULL);
        m->polls = 0;
        ask_target(m, NULL, NULL);
        return;
    }
    if (!st || !strcmp(st, "failed") || !strcmp(st, "cancelled")) {
        struct yerr e;
        qemu_said(&e, "the source's migration failed at switchover", res);
        mig_fail(m, &e);
        return;
    }
    mig_later(m, 10, ask_completion);
}

static void continued(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    if (mig_save(m, "switchover") < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        mig_fail(m, &e);
        return;
    }
    mig_detail(m, true);
    ask_completion(m, NULL, NULL);
}

static void node_deleted(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_qmp(m, m->row.source, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"),
            continued);
}

/* ---- the source agent's switchover (agent_switch.c) ---- */

static void switched(struct mig *m, json_t *res, const struct yerr *err);

/* vm.switchover on the source: it waits up to wait_ms for the pause at
 * pre-switchover (0: the pause was seen here), then does the steps above on
 * its host, without a hop between them, up to the source's completion. */
static void switch_call(struct mig *m, int wait_ms)
{
    if (wait_ms && !m->switch_asked) {
        m->switch_asked = true;
        FAILPOINT("migrate.after_memory");
    }
    json_t *a = json_pack("{s:s,s:i}", "vm", m->row.vm_id, "wait_ms", wait_ms);
    if (a && m->ndisks == 1) { /* the one mirror as any agent with the verb knows it */
        json_object_set_new(a, "mirror", json_string(m->disks[0].job));
        json_object_set_new(a, "node", json_string(m->disks[0].node));
    } else if (a && m->ndisks > 1) {
        json_object_set_new(a, "mirrors", mig_disks_mirrors(m));
    }
    mig_call(m, m->row.source, AV_VM_SWITCHOVER, a, switched);
}

/* The steps one call each: an agent that does not know vm.switchover (an
 * older yund), once the pause was seen. */
static void legacy_switchover(struct mig *m)
{
    if (!m->ndisks)
        node_deleted(m, NULL, NULL); /* no mirror, no NBD node: migrate-continue */
    else
        mig_disks_end(m, node_deleted);
}

static void mem_poll(struct mig *m, json_t *res, const struct yerr *err);
static void ask_mem(struct mig *m, json_t *res, const struct yerr *err);

static void switched(struct mig *m, json_t *res, const struct yerr *err)
{
    if (err && err->code == YE_NOT_IMPLEMENTED) {
        m->legacy_switch = true;
        if (m->t_paused)
            legacy_switchover(m);
        else
            ask_mem(m, NULL, NULL); /* the controller polls for the pause */
        return;
    }
    if (mig_bail(m, err))
        return;
    json_t *q = json_object_get(res, "migrate");
    if (!json_is_true(json_object_get(res, "switched"))) {
        mem_poll(m, q, NULL); /* no pause within the wait: the figures, then again */
        return;
    }
    json_t *us = json_object_get(res, "us");
    if (json_is_object(us)) {
        json_object_set(m->detail, "switchover_us", us);
        json_int_t paused = json_integer_value(json_object_get(us, "paused"));
        json_int_t done = json_integer_value(json_object_get(us, "completed"));
        if (!m->t_paused && done >= paused && paused >= 0)
            m->t_paused = monotonic_ms() - (done - paused) / 1000;
    }
    /* the phase goes with the completion's write (one write, after the
     * source completed: the settle asks QEMU, not the phase) */
    snprintf(m->row.phase, sizeof m->row.phase, "switchover");
    completion(m, q, NULL);
}

/* ---- memory ---- */

static void mem_poll(struct mig *m, json_t *res, const struct yerr *err);
static void ask_mem(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_qmp(m, m->row.source, "query-migrate", NULL, mem_poll);
}

/* The memory phase asks only the source how it goes; a lost target (its
 * agent killed, its host gone, its QEMU dead) would show only at the
 * switchover, after the whole transfer. So the target is asked about once
 * a second too: an error from it, or a QEMU that is no longer waiting for
 * the stream, rolls the move back now. */
static void target_alive(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *st = json_string_value(json_object_get(res, "status"));
    if (!st || strcmp(st, "inmigrate")) {
        struct yerr e;
        yerr_set(&e, YE_UNAVAILABLE, "the target's QEMU stopped receiving vm '%s' (its state: %s)",
                 m->row.vm_name, st ? st : "unknown");
        mig_fail(m, &e);
        return;
    }
    m->target_checked = monotonic_ms();
    ask_mem(m, NULL, NULL);
}

static void mem_poll(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *st = json_string_value(json_object_get(res, "status"));
    json_t *ram = json_object_get(res, "ram");
    if (ram) {
        json_t *r = json_pack("{s:I,s:I,s:I,s:I,s:I}", "transferred",
                              json_integer_value(json_object_get(ram, "transferred")), "remaining",
                              json_integer_value(json_object_get(ram, "remaining")), "total",
                              json_integer_value(json_object_get(ram, "total")), "dirty_pages_rate",
                              json_integer_value(json_object_get(ram, "dirty-pages-rate")), "mbps",
                              (json_int_t)json_real_value(json_object_get(ram, "mbps")));
        if (r)
            json_object_set_new(m->detail, "ram", r);
        json_object_set_new(
            m->detail, "expected_downtime_ms",
            json_integer(json_integer_value(json_object_get(res, "expected-downtime"))));
        mig_detail(m, false);
    }
    if (st && !strcmp(st, "pre-switchover")) {
        /* seen here (between two waits of the agent's, or an older agent):
         * the guest is paused, the mirror is in step; end it leaving the
         * target's copy consistent and the source on its own disk. The
         * phase "switchover" is written once the source completed: no
         * database write inside the guest's downtime, and a crash before it
         * settles the same way (the settle asks QEMU, not the phase) */
        m->t_paused = monotonic_ms();
        FAILPOINT("migrate.after_memory");
        if (m->legacy_switch)
            legacy_switchover(m);
        else
            switch_call(m, 0);
        return;
    }
    if (!st || !strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "completed")) {
        struct yerr e;
        qemu_said(&e, "the source's migration failed", res);
        mig_fail(m, &e);
        return;
    }
    /* the source waits paused at pre-switchover until it is seen: ask often,
     * and more often once what is left would go within a poll or two */
    json_int_t left = json_integer_value(json_object_get(ram, "remaining"));
    double mbps = json_real_value(json_object_get(ram, "mbps"));
    bool near = ram && left >= 0 && (double)left * 8 / 1e6 < mbps * 2 * MIG_MEM_POLL_MS / 1000.0;
    if (!near && monotonic_ms() - m->target_checked >= MIG_TARGET_CHECK_MS) {
        mig_qmp(m, m->row.target, "query-status", NULL, target_alive);
        return;
    }
    if (m->legacy_switch)
        mig_later(m, near ? MIG_MEM_POLL_NEAR_MS : MIG_MEM_POLL_MS, ask_mem);
    else
        switch_call(m, MIG_SWITCH_WAIT_MS); /* the agent watches for the pause */
}

static void migrating(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    m->mem_t0 = m->target_checked = monotonic_ms();
    ask_mem(m, NULL, NULL);
}

static void incoming_set(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    char uri[128];
    snprintf(uri, sizeof uri, "tcp:%s:%d", m->addr, m->mig_port);
    mig_qmp(m, m->row.source, "migrate", json_pack("{s:s}", "uri", uri), migrating);
}

static void params_set(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    if (mig_save(m, "memory") < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        mig_fail(m, &e);
        return;
    }
    char uri[128];
    snprintf(uri, sizeof uri, "tcp:%s:%d", m->addr, m->mig_port);
    mig_qmp(m, m->row.target, "migrate-incoming", json_pack("{s:s}", "uri", uri), incoming_set);
}

static void caps_set(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    json_t *p = json_pack("{s:I}", "max-bandwidth",
                          (json_int_t)(m->o.max_bandwidth ? m->o.max_bandwidth : UNLIMITED_BW));
    if (p && m->o.max_downtime_ms > 0)
        json_object_set_new(p, "downtime-limit", json_integer(m->o.max_downtime_ms));
    mig_qmp(m, m->row.source, "migrate-set-parameters", p, params_set);
}

static void memory_start(struct mig *m)
{
    json_t *caps =
        json_pack("[{s:s,s:b},{s:s,s:b}]", "capability", "pause-before-switchover", "state", 1,
                  "capability", "auto-converge", "state", m->o.auto_converge);
    mig_qmp(m, m->row.source, "migrate-set-capabilities", json_pack("{s:o}", "capabilities", caps),
            caps_set);
}

/* ---- the disk ---- */

static void mirror_poll(struct mig *m, json_t *res, const struct yerr *err);
static void ask_mirror(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_qmp(m, m->row.source, "query-block-jobs", NULL, mirror_poll);
}

static void mirror_poll(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    bool ready = false;
    struct yerr e = {0};
    if (mig_disks_poll(m, res, &ready, &e) < 0) {
        mig_fail(m, &e);
        return;
    }
    mig_detail(m, false);
    if (ready) {
        m->mirror_ms = monotonic_ms() - m->mirror_t0;
        FAILPOINT("migrate.after_mirroring");
        memory_start(m);
        return;
    }
    mig_later(m, MIG_POLL_MS, ask_mirror);
}

static void mirror_started(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    if (mig_save(m, "mirroring") < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        mig_fail(m, &e);
        return;
    }
    ask_mirror(m, NULL, NULL);
}

/* ---- the target ---- */

static void launched(struct mig *m, json_t *res, const struct yerr *err)
{
    if (err) {
        mig_bail(m, err);
        return;
    }
    m->row.target_pid = (int32_t)json_integer_value(json_object_get(res, "pid"));
    m->row.target_uid = (uint32_t)json_integer_value(json_object_get(res, "uid"));
    if (mig_save(m, "target_started") < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        mig_fail(m, &e);
        return;
    }
    FAILPOINT("migrate.after_target_started");
    if (mig_bail(m, NULL))
        return;
    if (!m->ndisks) {
        memory_start(m); /* one disk both QEMUs open, no volume: nothing to mirror */
        return;
    }
    mig_disks_copy(m, mirror_started);
}

static json_t *launch_args(struct mig *m, struct yerr *err)
{
    struct ctl *c = m->c;
    struct launch_spec spec;
    memset(&spec, 0, sizeof spec);
    if (store_image_get(c->store, m->vm.image, &spec.img) != 0) {
        yerr_set(err, YE_CONFLICT, "image '%s' of vm '%s' is missing", m->vm.image, m->vm.name);
        return NULL;
    }
    ctl_image_on_host(c, m->row.target, &spec.img);
    spec.vm = m->vm;
    snprintf(spec.vm.host, sizeof spec.vm.host, "%s", m->row.target);
    spec.vm.uid = 0; /* the target's agent claims one of its own */
    spec.vm.pid = 0;
    if (m->shared && ctl_pool_disk_dir(c, &spec.vm, err) < 0) {
        launch_spec_free(&spec);
        return NULL;
    }
    /* the volumes at their files on the target (each a single layer:
     * linked clones do not move) */
    spec.vols = m->nvols ? calloc(m->nvols, sizeof *spec.vols) : NULL;
    for (size_t i = 0; spec.vols && i < m->nvols; i++) {
        struct launch_vol *lv = &spec.vols[i];
        spec.nvols = i + 1;
        lv->rec = m->vols[i];
        snprintf(lv->rec.host, sizeof lv->rec.host, "%s", m->row.target);
        snprintf(lv->rec.path, sizeof lv->rec.path, "%s",
                 m->disks[m->ndisks - (int)m->nvols + (int)i].to);
        if (!(lv->layers = calloc(1, sizeof *lv->layers)))
            break;
        snprintf(lv->layers[0].path, sizeof lv->layers[0].path, "%s", lv->rec.path);
        snprintf(lv->layers[0].format, sizeof lv->layers[0].format, "%s", lv->rec.format);
        lv->n = 1;
    }
    bool short_of_memory = m->nvols && (!spec.vols || !spec.vols[spec.nvols - 1].layers);
    json_t *a = short_of_memory ? NULL : launch_spec_to_json(&spec);
    launch_spec_free(&spec);
    if (a) {
        json_object_set_new(a, "incoming", json_true());
        if (m->pci) /* laid out as the source is */
            json_object_set(a, "pci", m->pci);
    } else {
        yerr_set(err, YE_INTERNAL, "out of memory");
    }
    return a;
}

static void pci_read(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    struct yerr e;
    json_t *a = launch_args(m, &e);
    if (!a) {
        mig_fail(m, &e);
        return;
    }
    mig_call(m, m->row.target, AV_VM_LAUNCH, a, launched);
}

/* The target gets the source's PCI layout: a volume hot-plugged there sits
 * where a new argv would not put it. */
static void volumes_made(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    mig_pci_read(m, pci_read);
}

static void got_ports(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *addr = json_string_value(json_object_get(res, "address"));
    json_t *ports = json_object_get(res, "ports");
    struct yerr e;
    if (!addr || !addr[0] || strlen(addr) >= sizeof m->addr || json_array_size(ports) != 2 ||
        json_integer_value(json_array_get(ports, 0)) < 1 ||
        json_integer_value(json_array_get(ports, 0)) > 65535 ||
        json_integer_value(json_array_get(ports, 1)) < 1 ||
        json_integer_value(json_array_get(ports, 1)) > 65535) {
        yerr_set(&e, YE_BAD_GATEWAY, "host %s: host.ports answered no usable ports",
                 ctl_host_label(m->c, m->row.target));
        mig_fail(m, &e);
        return;
    }
    snprintf(m->addr, sizeof m->addr, "%s", addr);
    m->nbd_port = (int)json_integer_value(json_array_get(ports, 0));
    m->mig_port = (int)json_integer_value(json_array_get(ports, 1));
    snprintf(m->row.ports, sizeof m->row.ports,
             "{\"address\":\"%s\",\"nbd\":%d,\"migrate\":%d,\"source_pid\":%d,"
             "\"source_uid\":%u}",
             m->addr, m->nbd_port, m->mig_port, (int)m->vm.pid, m->vm.uid);
    mig_save(m, NULL);
    if (m->nvols)
        mig_volumes_make(m, volumes_made);
    else
        volumes_made(m, NULL, NULL);
}

static void prepared(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    if (m->cold) {
        mig_cold_copy(m); /* no QEMU: the files, then the commit */
        return;
    }
    mig_call(m, m->row.target, AV_HOST_PORTS, json_pack("{s:i}", "count", 2), got_ports);
}

/* The target's directory: the overlay on the same image and, for a seeded
 * VM, the source's seed ISO byte for byte (seed_iso_b64 of
 * vm.seed_read's answer), so the target QEMU gets the same seed drive. */
static void prepare_target(struct mig *m, const char *seed_b64)
{
    struct ctl *c = m->c;
    struct image_rec img;
    struct yerr e;
    if (store_image_get(c->store, m->vm.image, &img) != 0) {
        yerr_set(&e, YE_CONFLICT, "image '%s' of vm '%s' is missing", m->vm.image, m->vm.name);
        mig_fail(m, &e);
        return;
    }
    ctl_image_on_host(c, m->row.target, &img);
    json_t *a = json_pack("{s:s,s:s,s:I,s:s,s:s,s:b}", "vm", m->vm.id, "name", m->vm.name,
                          "disk_bytes", (json_int_t)m->vm.disk_bytes, "image_path", img.path,
                          "image_format", img.format, "seed", 0);
    if (a && seed_b64)
        json_object_set_new(a, "seed_iso_b64", json_string(seed_b64));
    if (a && m->shared) {
        /* the disk is in the pool already: only the VM's own directory */
        struct vm_rec v = m->vm;
        if (ctl_pool_disk_dir(c, &v, &e) < 0) {
            json_decref(a);
            mig_fail(m, &e);
            return;
        }
        json_object_set_new(a, "disk_dir", json_string(v.disk_dir));
        json_object_set_new(a, "existing", json_true());
    }
    mig_call(m, m->row.target, AV_VM_PREPARE, a, prepared);
}

static void seed_read(struct mig *m, json_t *res, const struct yerr *err)
{
    const char *b64 = json_string_value(json_object_get(res, "iso_b64"));
    struct yerr e;
    if (!err && !b64) {
        yerr_set(&e, YE_BAD_GATEWAY, "host %s: vm.seed_read answered no ISO",
                 ctl_host_label(m->c, m->row.source));
        err = &e;
    }
    if (mig_bail(m, err))
        return;
    prepare_target(m, b64);
}

void mig_run_start(struct mig *m)
{
    struct yerr e = {0};
    if (mig_disks_plan(m, &e) < 0) {
        mig_fail(m, &e);
        return;
    }
    if (m->vm.seed)
        mig_call(m, m->row.source, AV_VM_SEED_READ, json_pack("{s:s}", "vm", m->vm.id), seed_read);
    else
        prepare_target(m, NULL);
}
