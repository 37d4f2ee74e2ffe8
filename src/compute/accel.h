/*
 * accel.h - choosing QEMU's accelerator. KVM only when the CPU advertises
 * hardware virtualisation (vmx/svm) AND /dev/kvm opens; a /dev/kvm on its own
 * proves nothing (paravirtual KVM without vmx boots Linux ~1000x slower).
 */
#ifndef YUN_ACCEL_H
#define YUN_ACCEL_H

#include <stdbool.h>

/* Does this cpuinfo text show vmx or svm in a flags line? Pure. */
bool cpuinfo_has_hw_virt(const char *cpuinfo);
/* "kvm" or "tcg" for this host when the request is "auto"; a request of
 * "kvm" or "tcg" is returned as is (operator override). */
const char *accel_choose(const char *requested);

#endif
