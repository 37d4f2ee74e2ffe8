/*
 * qemu_argv.h - the QEMU command line for a VM, built from its record, its
 * image and its directory. Pure (no I/O), so it is unit-tested exactly.
 */
#ifndef YUN_QEMU_ARGV_H
#define YUN_QEMU_ARGV_H

#include "store/records.h"

/* File names inside a VM's directory. Short: unix socket paths are limited. */
#define VMDIR_QMP     "qmp.sock"
#define VMDIR_QMPEV   "qmpe.sock"
#define VMDIR_CONSOLE "con.sock"
#define VMDIR_CONLOG  "console.log"
#define VMDIR_PIDFILE "qemu.pid"
#define VMDIR_DISK    "disk.qcow2"
#define VMDIR_QEMULOG "qemu.log"
#define VMDIR_QGA     "qga.sock"
#define VMDIR_SEED    "seed.iso"

struct qemu_argv {
    char **argv; /* NULL-terminated */
    int argc;
};

/* Builds argv for `vm` booting `img` from directory vmdir, with accelerator
 * accel ("kvm"/"tcg"). The VM is started paused (-S) and daemonized, so the
 * caller can put it in its cgroup before the guest runs a single instruction.
 * Returns 0, or -1 with a reason in err. */
int qemu_argv_build(const char *qemu_binary, const struct vm_rec *vm, const struct image_rec *img,
                    const char *vmdir, const char *accel, struct qemu_argv *out, char *err,
                    size_t errlen);
void qemu_argv_free(struct qemu_argv *a);
/* One string, arguments separated by spaces (for logs and tests). */
char *qemu_argv_join(const struct qemu_argv *a);

#endif
