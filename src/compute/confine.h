/*
 * confine.h - running each VM's QEMU unprivileged: a uid of its own (unique
 * on the machine, however many yunds run on it), no capabilities, seccomp,
 * and only its own VM directory reachable.
 *
 * yund's child opens the files QEMU needs from outside the VM's directory
 * (the image under its disk, the image's kernel and initrd, attached
 * volumes: all root's), changes to the VM's directory, drops to the VM's
 * uid and only then execs QEMU, which inherits those fds. So QEMU starts
 * unprivileged and its seccomp filter can forbid setuid. After the drop it
 * cannot reach any path under the (root-only) state directory by name, but
 * it still reaches the files of its own directory by their relative names,
 * which is what QEMU uses when it reopens a disk layer or opens a snapshot
 * overlay. Files elsewhere that it needs later (hot-plugged volumes) are
 * opened by yund and passed over QMP as fds.
 */
#ifndef YUN_CONFINE_H
#define YUN_CONFINE_H

#include <stdbool.h>
#include <stdint.h>

#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "lib/proc.h"

/* How long a QEMU may take from fork to its monitor answering. */
#define SPAWN_TIMEOUT_MS 60000

/* A layer of an attached volume's chain: layers[0] is the volume (opened
 * read-write), then the volume it is a linked clone of, and so on. */
struct confine_layer {
    char path[512];
    char format[8];
};
struct confine_volin {
    char id[37];
    char name[64];
    const struct confine_layer *layers;
    int n;
};

/* Layers of the VM's disk chain that name the one under them by its
 * absolute path (made by an older yund): each must be rebased
 * (qemu-img rebase -u -b BACKING LAYER) before the confined QEMU opens it. */
#define CONFINE_REBASE_MAX 8
struct confine_rebases {
    int n;
    struct confine_rebase {
        char layer[800];   /* absolute */
        char backing[256]; /* the relative name it is to name */
    } r[CONFINE_REBASE_MAX];
};

/* Before a start: makes sure vm has a uid claimed for it machine-wide
 * (allocating one when it has none, when its claim was taken by another
 * VM, or when some process runs as it) and sets vm->uid (the caller records
 * it before QEMU runs: no store access here), gives the VM's directory and
 * the files QEMU writes to that uid, and plans the files QEMU gets by fd
 * (out->files: img, the volumes' chains vols; checks the disk chain's
 * headers, which the VM's QEMU wrote, name only its directory and its
 * image; layers to rebase first go to fix). Never blocks on a child. */
int vm_confine_prepare(struct engine *e, struct vm_rec *vm, const struct image_rec *img,
                       const struct confine_volin *vols, size_t nvols, struct vm_confine *out,
                       struct confine_rebases *fix, struct yerr *err);

/* Spawning QEMU through job.c (no blocking wait): vm_confine_spawn_open
 * fills s (opens qemu.log for a confined QEMU); vm_confine_spawn_child is
 * the job's setup (job_spec.setup, arg s, new_session), which for a
 * confined QEMU daemonizes it and writes its pid on the job's stdout (the
 * job then exits 0 at once); unconfined the job execs argv, a -daemonize
 * QEMU whose parent exits once its monitors listen. pre_exec runs in the
 * process that becomes QEMU (it joins the cgroup). close after the job. */
struct confine_spawn {
    const struct vm_confine *c;
    char *const *argv;
    int (*pre_exec)(void *arg);
    void *pre_arg;
    char dir[512];
    int logfd;
    /* the kernel's and initrd's memfd copies (bootfd.h): the file index,
     * the fd (-1: none), and whether the child fills it */
    struct {
        int file, fd;
        bool fill;
    } boot[2];
};
int vm_confine_spawn_open(struct engine *e, const struct vm_rec *vm, const struct vm_confine *c,
                          char *const argv[], int (*pre_exec)(void *arg), void *arg,
                          struct confine_spawn *s, char *why, size_t len);
int vm_confine_spawn_child(void *arg);
void vm_confine_spawn_close(struct confine_spawn *s);

/* How much a VM's QEMU may lock (memory_lock): -1 = any (yund has
 * CAP_IPC_LOCK, which a confined QEMU keeps for it, or CAP_SYS_RESOURCE, to
 * raise its RLIMIT_MEMLOCK), else yund's own hard RLIMIT_MEMLOCK in bytes. */
int64_t vm_confine_memlock_max(void);

/* The VM is gone: its uid claim is released. */
void vm_confine_release(struct engine *e, const struct vm_rec *vm);

/* The name a running QEMU must be given for file (in the VM's directory) so
 * that it can open it: relative when QEMU runs in that directory (confined),
 * absolute otherwise. */
int vm_qemu_name(struct engine *e, const struct vm_rec *vm, const char *file, char *out,
                 size_t len);
/* The absolute path of a file name QEMU reports (relative names are in the
 * VM's directory). */
void vm_qemu_abs(struct engine *e, const struct vm_rec *vm, const char *name, char *out,
                 size_t len);

/* Pure helpers (unit-tested). The text of a uid claim file, and whether a
 * claim's text names this VM of this yund (its DIR/vms). */
void confine_claim_text(const char *vm_id, const char *vms_dir, char *out, size_t len);
bool confine_claim_is(const char *text, const char *vm_id, const char *vms_dir);

#endif
