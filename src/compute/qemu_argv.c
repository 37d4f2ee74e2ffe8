/*
 * qemu_argv.c - assembling QEMU's command line.
 *
 * Choices that matter:
 *  - -nodefaults: only devices we ask for, so what runs is what yun shows.
 *  - two QMP monitors: one that yund keeps open for events, one for
 *    short-lived command connections (a chardev socket takes one client).
 *  - the serial console is a socket *with a logfile*: QEMU itself appends
 *    everything the guest prints to console.log, even while yund is down.
 *  - -daemonize + -pidfile: QEMU detaches into its own session and outlives
 *    yund; the parent exits only once the monitors are listening.
 *  - -S: start with vCPUs stopped; yund attaches its event watch, then "cont".
 *  - confined (confine.c): QEMU starts as the VM's uid (the caller drops
 *    to it before exec), under -sandbox with elevateprivileges=deny; in its
 *    working directory, the VM's, it is given relative names, and the files
 *    outside it (the image, its kernel and initrd, attached volumes) by fd.
 *  - a virtio-serial port for the QEMU guest agent, and the cloud-init seed
 *    disk when the VM has one.
 */
#include "compute/qemu_argv.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builder {
    char **v;
    int n, cap, oom;
};

static void add(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct builder *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    if (b->n + 2 > b->cap) {
        int nc = b->cap ? b->cap * 2 : 64;
        char **nv = realloc(b->v, (size_t)nc * sizeof(char *));
        if (!nv) {
            b->oom = 1;
            return;
        }
        b->v = nv;
        b->cap = nc;
    }
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&b->v[b->n], fmt, ap) < 0)
        b->oom = 1;
    else
        b->v[++b->n] = NULL;
    va_end(ap);
}

/* QEMU's option parser splits on commas; a comma in a path is written ",,". */
static int has_comma(const char *s)
{
    return strchr(s, ',') != NULL;
}

void volume_qemu_ids(const struct volume_rec *v, char node[24], char dev[24], char serial[24])
{
    char hex[13];
    int n = 0;
    for (const char *p = v->id; *p && n < 12; p++)
        if (*p != '-')
            hex[n++] = *p;
    hex[n] = 0;
    snprintf(node, 24, "vol-%s", hex);
    snprintf(dev, 24, "voldev-%s", hex);
    snprintf(serial, 24, "%.20s", v->name);
}

/* "backing." n times: the options of the n-th layer below a node. */
static const char *backing_prefix(int n, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < n && strlen(buf) + 9 < len; i++)
        strcat(buf, "backing.");
    return buf;
}

/* The options that give QEMU files[first..first+n) (a volume, the volume
 * under it...) as one chain of fdsets, read-only below the top: QEMU must
 * not open the backing files its headers name (it cannot reach them). */
static void add_fd_chain(struct builder *b, const char *head, const struct vm_confine *c, int first,
                         int n, int depth0)
{
    char opts[2048], pre[160];
    snprintf(opts, sizeof(opts), "%s", head);
    for (int k = 0; k < n; k++) {
        const struct confine_file *f = &c->files[first + k];
        int depth = depth0 + k;
        size_t l = strlen(opts);
        backing_prefix(depth, pre, sizeof(pre));
        snprintf(opts + l, sizeof(opts) - l,
                 "%s%sdriver=%s,%sfile.driver=file,%sfile.filename=/dev/fdset/%d", l ? "," : "",
                 pre, f->fmt, pre, pre, first + k + 1);
        if (depth) {
            l = strlen(opts);
            snprintf(opts + l, sizeof(opts) - l, ",%sread-only=on", pre);
        }
    }
    add(b, "%s", opts);
}

int qemu_argv_build(const char *qemu_binary, const struct vm_rec *vm, const struct image_rec *img,
                    const char *vmdir, const char *accel, const struct volume_rec *vols,
                    size_t nvols, const struct vm_confine *conf, struct qemu_argv *out, char *err,
                    size_t errlen)
{
    bool confined = conf && conf->on;
    memset(out, 0, sizeof(*out));
    bool commas = has_comma(vmdir) || has_comma(img->kernel) || has_comma(img->initrd) ||
                  has_comma(vm->disk) || has_comma(vm->disk_dir);
    for (size_t i = 0; i < nvols; i++)
        commas |= has_comma(vols[i].path);
    if (commas) {
        snprintf(err, errlen, "paths with commas are not supported by QEMU options");
        return -1;
    }
    if (!vm->disk[0] || strchr(vm->disk, '/')) {
        snprintf(err, errlen, "bad disk layer name '%s'", vm->disk);
        return -1;
    }
    if (strcmp(accel, "kvm") && strcmp(accel, "tcg")) {
        snprintf(err, errlen, "unknown accelerator '%s'", accel);
        return -1;
    }
    if (confined && (!conf->uid || !conf->gid)) {
        snprintf(err, errlen, "a confined qemu needs a non-root uid and gid");
        return -1;
    }
    if (confined) {
        bool bad = conf->nfiles < 0 || conf->nfiles > CONFINE_FILES_MAX || conf->disk_layers < 1 ||
                   conf->nvols < 0 || conf->nvols > CONFINE_VOLS_MAX ||
                   (conf->image >= 0 && conf->image != QEMU_FDSET_IMAGE - 1);
        for (int i = 0; !bad && i < conf->nfiles; i++)
            bad = has_comma(conf->files[i].path);
        for (int i = 0; !bad && i < conf->nvols; i++)
            bad = conf->vols[i].first < 0 || conf->vols[i].n < 1 ||
                  conf->vols[i].first + conf->vols[i].n > conf->nfiles;
        if (bad) {
            snprintf(err, errlen, "bad confinement plan (files passed to qemu)");
            return -1;
        }
    }
    if (vm->cpus < 1 || vm->memory_mb < 16) {
        snprintf(err, errlen, "vm needs at least 1 cpu and 16 MiB");
        return -1;
    }
    struct builder b = {0};
    const char *unplanned = NULL;
    add(&b, "%s", qemu_binary);
    add(&b, "-name");
    add(&b, "guest=%s,debug-threads=on", vm->name);
    add(&b, "-uuid");
    add(&b, "%s", vm->id);
    add(&b, "-machine");
    /* mem-merge=off: the VM's KSM opt-out (its RAM is not madvise'd
     * MADV_MERGEABLE, so ksmd never scans or shares it) */
    add(&b, "%s,accel=%s%s", vm->machine[0] ? vm->machine : "pc", accel,
        vm->no_merge ? ",mem-merge=off" : "");
    add(&b, "-cpu");
    /* a named model (fixed at create, sched/cpu_models.h) migrates between
     * hosts that run it; rows from before have none: host or max */
    add(&b, "%s", vm->cpu_model[0] ? vm->cpu_model : strcmp(accel, "kvm") == 0 ? "host" : "max");
    add(&b, "-smp");
    add(&b, "%d", vm->cpus);
    add(&b, "-m");
    add(&b, "%llu", (unsigned long long)vm->memory_mb);
    if (vm->memory_lock) { /* mlockall: resident, never swapped (RLIMIT_MEMLOCK: the launch's) */
        add(&b, "-overcommit");
        add(&b, "mem-lock=on");
    }
    add(&b, "-nodefaults");
    add(&b, "-no-user-config");
    add(&b, "-display");
    add(&b, "none");
    add(&b, "-S");
    /* Confined, QEMU already runs as the VM's uid (no -runas: QEMU 7.2
     * installs its filter before -runas calls setuid, which
     * elevateprivileges=deny forbids). spawn=deny forbids fork and exec, so
     * QEMU cannot -daemonize (the caller detaches it). Names in vmdir are
     * relative: QEMU runs there and cannot pass through the (root-only)
     * state directory above it. */
    const char *dir = confined ? "" : vmdir, *slash = confined ? "" : "/";
    if (confined) {
        add(&b, "-sandbox");
        add(&b, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        /* The files yund's child opened for QEMU. Each set's opaque label
         * names the VM's directory and the file the fd was opened from:
         * that keeps the absolute directory in the command line, by which
         * yund (and operators) find the VM's QEMU (qemu_cmdline_matches),
         * and shows what QEMU holds. */
        for (int i = 0; i < conf->nfiles; i++) {
            if (conf->files[i].memfd)
                continue;
            add(&b, "-add-fd");
            add(&b, "fd=%d,set=%d,opaque=%s/fd-%d:%s", CONFINE_FD_FIRST + i, i + 1, vmdir, i + 1,
                conf->files[i].path);
        }
    } else {
        add(&b, "-daemonize");
    }
    /* QEMU resolves a pidfile's full path (realpath), which it cannot do
     * through the state directory: yund writes a confined QEMU's pidfile */
    if (!confined) {
        add(&b, "-pidfile");
        add(&b, "%s/" VMDIR_PIDFILE, vmdir);
    }
    /* A detached confined QEMU's stderr already is qemu.log (appended);
     * -D would reopen it truncated without -daemonize and lose the lines
     * of earlier starts, and QEMU's own error with them. */
    if (!confined) {
        add(&b, "-D");
        add(&b, "%s/" VMDIR_QEMULOG, vmdir);
    }
    add(&b, "-chardev");
    add(&b, "socket,id=qmp,path=%s%s" VMDIR_QMP ",server=on,wait=off", dir, slash);
    add(&b, "-mon");
    add(&b, "chardev=qmp,mode=control");
    add(&b, "-chardev");
    add(&b, "socket,id=qmpev,path=%s%s" VMDIR_QMPEV ",server=on,wait=off", dir, slash);
    add(&b, "-mon");
    add(&b, "chardev=qmpev,mode=control");
    add(&b, "-chardev");
    add(&b,
        "socket,id=console,path=%s%s" VMDIR_CONSOLE ",server=on,wait=off,logfile=%s%s" VMDIR_CONLOG
        ",logappend=on",
        dir, slash, dir, slash);
    add(&b, "-serial");
    add(&b, "chardev:console");
    /* Confined, the layers QEMU may reopen later (read-write for a merge)
     * are named relative to its working directory, the VM's directory, and
     * found through their headers' relative names; the image under the
     * lowest of them is the fd of set QEMU_FDSET_IMAGE, given in place of
     * the name that layer's header has for it. */
    /* A disk in a pool keeps its read-write fd when its permissions drop
     * (file.auto-read-only=off): on a shared pool the migration's target
     * is given the file before the source inactivates its image at the
     * switchover, and a reopen read-only by name would then be refused to
     * the source's uid. */
    const char *pool_ro = vm->disk_dir[0] ? ",file.auto-read-only=off" : "";
    add(&b, "-drive");
    if (confined && conf->image >= 0 && conf->disk_on_image) {
        char head[700];
        /* a disk in a pool is named by its absolute path (not in the cwd) */
        snprintf(head, sizeof(head),
                 "id=disk0,file=%s%s%s,format=qcow2,if=none,cache=writeback,discard=unmap%s",
                 vm->disk_dir, vm->disk_dir[0] ? "/" : "", vm->disk, pool_ro);
        add_fd_chain(&b, head, conf, conf->image, 1, conf->disk_layers);
    } else {
        const char *ddir = vm->disk_dir[0] ? vm->disk_dir : dir;
        add(&b, "id=disk0,file=%s%s%s,format=qcow2,if=none,cache=writeback,discard=unmap%s", ddir,
            vm->disk_dir[0] ? "/" : slash, vm->disk, pool_ro);
    }
    add(&b, "-device");
    add(&b, "virtio-blk-pci,drive=disk0,id=virtio-disk0,bootindex=1");
    if (vm->seed) {
        /* the NoCloud seed (label cidata): cloud-init finds it by label */
        add(&b, "-drive");
        add(&b, "id=seed,file=%s%s" VMDIR_SEED ",format=raw,if=none,readonly=on", dir, slash);
        add(&b, "-device");
        add(&b, "virtio-blk-pci,drive=seed,id=virtio-seed");
    }
    /* Attached volumes, as -blockdev nodes with the names a hot-plug would
     * give them, so detaching works the same whichever way they came. */
    for (size_t i = 0; i < nvols; i++) {
        char node[24], dev[24], serial[24];
        volume_qemu_ids(&vols[i], node, dev, serial);
        add(&b, "-blockdev");
        const struct confine_vol *cv = NULL;
        for (int k = 0; confined && k < conf->nvols && !cv; k++)
            if (!strcmp(conf->vols[k].id, vols[i].id))
                cv = &conf->vols[k];
        if (confined && !cv) {
            unplanned = vols[i].name; /* refused below */
            break;
        }
        if (cv) {
            char head[100];
            snprintf(head, sizeof(head), "node-name=%s,discard=unmap,cache.direct=off", node);
            add_fd_chain(&b, head, conf, cv->first, cv->n, 0);
        } else {
            add(&b,
                "driver=%s,node-name=%s,discard=unmap,cache.direct=off,file.driver=file,"
                "file.filename=%s",
                vols[i].format, node, vols[i].path);
        }
        add(&b, "-device");
        add(&b, "virtio-blk-pci,drive=%s,id=%s,serial=%s", node, dev, serial);
    }
    /* A user-mode NIC with restrict=on: the guest gets DHCP and an address
     * from QEMU itself but can reach nothing beyond it (real networking,
     * bridges and taps, is the network service's job). The MAC is derived
     * from the VM id so it is stable across restarts. */
    unsigned h = 2166136261u;
    for (const char *p = vm->id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    add(&b, "-netdev");
    add(&b, "user,id=net0,restrict=on");
    add(&b, "-device");
    add(&b, "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff,
        (h >> 8) & 0xff, h & 0xff);
    add(&b, "-device");
    /* free pages the guest reports go back to the host as it frees them;
     * the guest's memory figures (qom-get guest-stats) every second are what
     * the host's balloon policy decides on (agent/agent_balloon.c) */
    add(&b, "virtio-balloon-pci,id=balloon0,free-page-reporting=on,"
            "guest-stats-polling-interval=1");
    /* the guest agent's channel; harmless when the guest runs no agent */
    add(&b, "-device");
    add(&b, "virtio-serial-pci,id=vser0");
    add(&b, "-chardev");
    add(&b, "socket,id=qga0,path=%s%s" VMDIR_QGA ",server=on,wait=off", dir, slash);
    add(&b, "-device");
    add(&b, "virtserialport,bus=vser0.0,chardev=qga0,id=qga0port,name=org.qemu.guest_agent.0");
    if (img->kernel[0]) {
        /* confined, the memfd copies yund's child made (see confine.h) */
        add(&b, "-kernel");
        if (confined && conf->kernel >= 0)
            add(&b, "/proc/self/fd/%d", CONFINE_FD_FIRST + conf->kernel);
        else
            add(&b, "%s", img->kernel);
        if (img->initrd[0]) {
            add(&b, "-initrd");
            if (confined && conf->initrd >= 0)
                add(&b, "/proc/self/fd/%d", CONFINE_FD_FIRST + conf->initrd);
            else
                add(&b, "%s", img->initrd);
        }
        /* The VM's own cmdline replaces the image default when given. */
        const char *cmd = vm->cmdline[0] ? vm->cmdline : img->cmdline;
        if (cmd[0]) {
            add(&b, "-append");
            add(&b, "%s", cmd);
        }
    }
    if (b.oom) {
        out->argv = b.v;
        qemu_argv_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (unplanned) {
        out->argv = b.v;
        qemu_argv_free(out);
        snprintf(err, errlen, "volume '%s' has no fd planned for qemu", unplanned);
        return -1;
    }
    out->argv = b.v;
    out->argc = b.n;
    return 0;
}

/* The id= of a -device's options ("" when none). */
static void device_id(const char *opts, char *id, size_t len)
{
    id[0] = 0;
    const char *p = !strncmp(opts, "id=", 3) ? opts : strstr(opts, ",id=");
    if (!p)
        return;
    p += p[0] == ',' ? 4 : 3;
    size_t n = strcspn(p, ",");
    if (n < len)
        snprintf(id, len, "%.*s", (int)n, p);
}

int qemu_argv_pin_pci(struct qemu_argv *a, const struct pci_pin *pins, size_t n, char *err,
                      size_t errlen)
{
    bool used[PCI_PINS_MAX] = {0};
    if (n > PCI_PINS_MAX) {
        snprintf(err, errlen, "more than %d PCI addresses", PCI_PINS_MAX);
        return -1;
    }
    for (int i = 0; i + 1 < a->argc; i++) {
        if (strcmp(a->argv[i], "-device"))
            continue;
        char id[32];
        device_id(a->argv[i + 1], id, sizeof id);
        for (size_t k = 0; id[0] && k < n; k++) {
            if (strcmp(pins[k].id, id))
                continue;
            if (strstr(a->argv[i + 1], ",addr=") || pins[k].slot < 0 || pins[k].slot > 31 ||
                pins[k].fn < 0 || pins[k].fn > 7) {
                snprintf(err, errlen, "device %s: cannot place it at %d.%d", id, pins[k].slot,
                         pins[k].fn);
                return -1;
            }
            char *opts = NULL;
            if (asprintf(&opts, "%s,addr=%02x.%x", a->argv[i + 1], (unsigned)pins[k].slot,
                         (unsigned)pins[k].fn) < 0) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(a->argv[i + 1]);
            a->argv[i + 1] = opts;
            used[k] = true;
            break;
        }
    }
    for (size_t k = 0; k < n; k++)
        if (!used[k]) {
            snprintf(err, errlen, "the source has a device %s that this host's qemu would not have",
                     pins[k].id);
            return -1;
        }
    return 0;
}

void qemu_argv_free(struct qemu_argv *a)
{
    if (a->argv)
        for (char **p = a->argv; *p; p++)
            free(*p);
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}

char *qemu_argv_join(const struct qemu_argv *a)
{
    size_t len = 1;
    for (int i = 0; i < a->argc; i++)
        len += strlen(a->argv[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < a->argc; i++) {
        size_t l = strlen(a->argv[i]);
        memcpy(p, a->argv[i], l);
        p += l;
        *p++ = i + 1 < a->argc ? ' ' : 0;
    }
    if (a->argc == 0)
        *p = 0;
    return s;
}
