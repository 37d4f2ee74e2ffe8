/*
 * qemu_argv.h - the QEMU command line for a VM, built from its record, its
 * image and its directory. Pure (no I/O), so it is unit-tested exactly.
 */
#ifndef YUN_QEMU_ARGV_H
#define YUN_QEMU_ARGV_H

#include <stdbool.h>
#include <stdint.h>

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

/* How one QEMU is run: confined (as uid:gid, see confine.h) or not
 * (qemu_confine=0). A confined QEMU starts unprivileged, so it cannot open
 * anything outside its VM directory by name: the files it needs from
 * elsewhere are opened by yund's child (as root) before it drops to the
 * uid, and inherited. files[i] is fd CONFINE_FD_FIRST + i; a block file is
 * also fdset i + 1 (-add-fd), which QEMU opens as /dev/fdset/N; a kernel or
 * initrd is copied into a sealed memfd, which QEMU opens as /proc/self/fd/N
 * (its -kernel/-initrd loader knows no fdsets). */
#define CONFINE_FD_FIRST  3
#define CONFINE_FILES_MAX 64
#define CONFINE_VOLS_MAX  32
#define QEMU_FDSET_IMAGE  1 /* the image's disk, under the VM's disk chain: files[0] */

struct confine_file {
    char path[256];
    char fmt[8]; /* a block file's format (raw, qcow2) */
    bool rw;     /* opened read-write (else read-only) */
    bool memfd;  /* -kernel / -initrd: handed over as a memfd copy */
};

/* An attached volume's chain: files[first] is the volume, then the volume
 * it is a linked clone of, and so on (n files). */
struct confine_vol {
    char id[40];
    int first, n;
};

struct vm_confine {
    bool on;
    uint32_t uid, gid;
    bool ipc_lock;      /* memory_lock: QEMU keeps CAP_IPC_LOCK (ambient), its one capability */
    int disk_layers;    /* layers of the VM's disk chain in its directory (>= 1) */
    bool disk_on_image; /* the lowest of them sits on the image (files[image]) */
    int image, kernel, initrd; /* indexes into files, -1 when not passed */
    struct confine_file files[CONFINE_FILES_MAX];
    int nfiles;
    struct confine_vol vols[CONFINE_VOLS_MAX];
    int nvols;
};

struct qemu_argv {
    char **argv; /* NULL-terminated */
    int argc;
};

/* QEMU's names for an attached volume: its block node and its virtio-blk
 * device (both derived from the volume id, so they survive restarts), and
 * the serial the guest sees (/dev/disk/by-id/virtio-SERIAL): the volume
 * name, cut to virtio's 20 bytes. */
void volume_qemu_ids(const struct volume_rec *v, char node[24], char dev[24], char serial[24]);

/* Builds argv for `vm` booting `img` from directory vmdir, with accelerator
 * accel ("kvm"/"tcg") and the nvols volumes attached to it. The VM is started paused (-S) and
 * daemonized, so the caller can put it in its cgroup before the guest runs a single instruction.
 * Confined (conf->on), QEMU is not asked to daemonize (the caller does it and starts it as
 * conf->uid:gid), runs under a seccomp filter (-sandbox), names every file of vmdir relative to
 * it (its working directory) and everything else by the fds of conf->files. Returns 0, or -1
 * with a reason in err. */
int qemu_argv_build(const char *qemu_binary, const struct vm_rec *vm, const struct image_rec *img,
                    const char *vmdir, const char *accel, const struct volume_rec *vols,
                    size_t nvols, const struct vm_confine *conf, struct qemu_argv *out, char *err,
                    size_t errlen);
/* A device's PCI address on the root bus, as a migration's source has it
 * (query-pci): the target must lay its devices out the same, or the
 * stream's device state does not load (a volume hot-plugged on the source
 * sits after the NIC; in a new argv it would come before). */
struct pci_pin {
    char id[32]; /* the -device's id= */
    int slot, fn;
};
#define PCI_PINS_MAX 64
/* Appends addr=SLOT.FN to each -device whose id= is pinned. -1 with err
 * when a pinned id is not one of argv's devices (the source has a device
 * this one would not), or a pinned device has an addr already. */
int qemu_argv_pin_pci(struct qemu_argv *a, const struct pci_pin *pins, size_t n, char *err,
                      size_t errlen);
void qemu_argv_free(struct qemu_argv *a);
/* One string, arguments separated by spaces (for logs and tests). */
char *qemu_argv_join(const struct qemu_argv *a);

#endif
