#!/usr/bin/env bash
# build-tiny-image.sh OUTDIR - builds yun's "tiny" guest image from Debian
# packages that are already installed, with no network access:
#
#   linux-image-cloud-amd64  kernel (/boot/vmlinuz-*-cloud-amd64) and modules
#   busybox-static           the whole userland of the guest
#   cpio, gzip, qemu-img     packing
#
# OUTDIR gets vmlinuz, initrd.img (gzip'd newc cpio), disk.qcow2 (64 MiB,
# empty) and image.json. The guest's /init prints "YUN-TINY-INIT-OK" on the
# serial console once its virtio drivers are loaded, then the virtio disks it
# sees, then "yun-heartbeat N" every 2 s forever. It keeps a shell on ttyS0
# and powers off on the ACPI power button (QMP system_powerdown).
# "yun.burn=1" on the kernel command line makes it spin every vCPU;
# "yun.spam=N" makes it print N numbered lines "yun-spam I" as fast as it can,
# then "YUN-SPAM-DONE" (tests of the console log cap).
# "yun.dirty=N" makes it rewrite N MiB of its RAM over and over (a busy guest
# for the migration figures, bench/migrate_figures.py).
# /bin/yun-hog N [MS] (typed on the console) makes it hold N MiB more of its
# memory, 4 MiB at a time every MS ms (default 500), in a tmpfs; "yun-hog 0"
# frees it all (the balloon policy's tests: a guest that needs its memory
# back). Its virtio_balloon reports free pages and memory statistics.
# "yun.silent_agent=1" makes it open the guest agent's virtio-serial port
# (org.qemu.guest_agent.0) and never answer: QEMU reports the agent up, and
# every exchange yund starts times out (a hung qemu-guest-agent, for tests).
#
# It needs 96 MiB (min_memory_mb in image.json): the cloud kernel with this
# initramfs reaches the marker at 72 MiB and no lower (at 64 MiB it resets
# before printing anything, at 70 MiB it panics and reboots), plus a margin.
#
# Everything is built in OUTDIR.tmp.$$ and swapped into place at the end, so
# a failed or interrupted run never leaves a half-written image; running it
# again simply rebuilds.
#
# Environment: YUN_TINY_KVER=<version> picks a kernel instead of the newest
# installed *-cloud-amd64 one.
set -euo pipefail
# shellcheck source=scripts/image-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/image-lib.sh"

die() {
    echo "build-tiny-image: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
out=${1%/}
[ -n "$out" ] || die "empty OUTDIR"

for tool in cpio gzip qemu-img; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install $tool)"
done
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox would need its libc in the initrd too.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
    die "$busybox is not statically linked (apt-get install busybox-static)"
fi

# ---- kernel -----------------------------------------------------------------
if [ -n "${YUN_TINY_KVER:-}" ]; then
    kver=$YUN_TINY_KVER
else
    kernel=$(printf '%s\n' /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n 1)
    [ -e "$kernel" ] || die "no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)"
    kver=${kernel#/boot/vmlinuz-}
fi
kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$kernel" ] || die "cannot read $kernel"
[ -r "$moddir/modules.dep" ] || die "no $moddir/modules.dep"

# ---- module dependency resolution -------------------------------------------
# modules.dep lines are "kernel/path/mod.ko[.xz]: dep1.ko dep2.ko". Names are
# compared with '-' folded to '_' as modprobe does.
declare -A mod_path=() mod_deps=()
while IFS= read -r line; do
    path=${line%%:*}
    deps=${line#*:}
    base=${path##*/}
    name=${base%%.ko*}
    name=${name//-/_}
    mod_path[$name]=$path
    mod_deps[$path]=$deps
done <"$moddir/modules.dep"

builtin_has() {
    [ -r "$moddir/modules.builtin" ] && grep -Eq "/$1\.ko\$" "$moddir/modules.builtin"
}

declare -A seen=()
order=()
visit() { # depth-first: every dependency before the module that needs it
    local path=$1 dep
    [ -n "${seen[$path]:-}" ] && return 0
    seen[$path]=1
    for dep in ${mod_deps[$path]}; do
        visit "$dep"
    done
    order+=("$path")
}

# Required: without these the guest sees no disk or NIC.
required=(virtio virtio_ring virtio_pci virtio_blk virtio_net failover net_failover)
# Optional: split out of virtio_pci in newer kernels; console and ACPI power
# button (+ evdev so busybox acpid can read the button's input events); the
# balloon (free page reporting and guest memory statistics for the host).
optional=(virtio_pci_modern_dev virtio_pci_legacy_dev virtio_console button evdev virtio_balloon)
for m in "${required[@]}" "${optional[@]}"; do
    if [ -n "${mod_path[$m]:-}" ]; then
        visit "${mod_path[$m]}"
    elif builtin_has "$m"; then
        : # compiled into this kernel, nothing to load
    else
        case " ${required[*]} " in
        *" $m "*) die "module $m is neither in $moddir/modules.dep nor built in" ;;
        esac
    fi
done

# ---- staging ----------------------------------------------------------------
tmp="$out.tmp.$$"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$tmp"
mkdir -p "$tmp"
root="$tmp/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root,etc/acpi/PWRF,lib/modules}
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

# The kernel opens /dev/console for init before anything is mounted; without
# the node init starts with no stdout (init re-opens it after devtmpfs anyway,
# so an unprivileged build still works).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# Modules are stored uncompressed under flat names and listed in load order,
# because busybox insmod does not decompress and there is no modprobe.
: >"$root/lib/modules/load-order"
for path in "${order[@]}"; do
    base=${path##*/}
    name=${base%%.ko*}
    src="$moddir/$path"
    dst="$root/lib/modules/$name.ko"
    case "$base" in
    *.ko) cp "$src" "$dst" ;;
    *.ko.xz) xz -dc "$src" >"$dst" ;;
    *.ko.zst) zstd -qdc "$src" >"$dst" ;;
    *.ko.gz) gzip -dc "$src" >"$dst" ;;
    *) die "unknown module format: $src" ;;
    esac
    echo "$name" >>"$root/lib/modules/load-order"
done

# busybox acpid runs ./PWRF/00000080 in its config dir for the power button.
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "yun-tiny: power button, powering off" >/dev/console
sync
poweroff -f
EOF
chmod 755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/bin/yun-hog" <<'EOF'
#!/bin/sh
# yun-hog N [MS]: hold N MiB more of guest memory (tmpfs, not reclaimable
# with no swap), 4 MiB every MS ms; yun-hog 0: free it all.
mb=${1:?usage: yun-hog MiB [ms]}
ms=${2:-500}
mkdir -p /hog
# sized past any RAM: the point is memory, not a tmpfs limit (size=100% is
# of the RAM at mount time, with the balloon inflated)
grep -q " /hog " /proc/mounts || mount -t tmpfs -o size=4G tmpfs /hog
if [ "$mb" -eq 0 ]; then
    rm -f /hog/*
    echo "yun-hog: freed"
    exit 0
fi
n=$(ls /hog | wc -l)
left=$mb
while [ "$left" -gt 0 ]; do
    n=$((n + 1))
    dd if=/dev/zero of=/hog/c$n bs=1M count=4 2>/dev/null || { echo "yun-hog: failed"; exit 1; }
    left=$((left - 4))
    usleep $((ms * 1000))
done
echo "yun-hog: holding $(du -sm /hog | cut -f1) MiB"
EOF
chmod 755 "$root/bin/yun-hog"

cat >"$root/init" <<'EOF'
#!/bin/sh
# yun tiny guest init (busybox sh, PID 1). Must never exit: the kernel panics.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
hostname tiny

while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "yun-tiny: insmod $m failed"
done </lib/modules/load-order

# ACPI power button -> clean poweroff (QMP system_powerdown). Started before
# the marker so a powerdown sent as soon as the marker is seen is not lost.
acpid -c /etc/acpi -l /tmp/acpid.log 2>/dev/null || echo "yun-tiny: acpid failed"

case " $(cat /proc/cmdline) " in
*" yun.silent_agent=1 "*)
    # virtio_console adds its ports a moment after it loads; devtmpfs makes
    # /dev/vportNpM. Held open on fd 3 by PID 1, never read, never answered.
    i=0
    while [ $i -lt 25 ]; do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
            [ -e "/dev/${p##*/}" ] && exec 3<>"/dev/${p##*/}" && i=99 &&
                echo "yun-tiny: guest agent port ${p##*/} open, never answering"
        done
        [ $i -lt 99 ] && sleep 0.2
        i=$((i + 1))
    done
    [ $i -ge 99 ] || echo "yun-tiny: no guest agent port to hold open"
    ;;
esac

echo "YUN-TINY-INIT-OK"

# virtio_blk registers its disks while insmod runs; still, give a slow probe
# up to a second when a virtio block device (id 0x0002) is present.
i=0
while [ $i -lt 5 ] && ! ls /sys/block/vd* >/dev/null 2>&1 &&
    grep -qsx 0x0002 /sys/bus/virtio/devices/*/device; do
    sleep 0.2
    i=$((i + 1))
done
for d in /sys/block/vd*; do
    [ -e "$d/size" ] || continue
    echo "yun-tiny: disk ${d##*/} $(( $(cat "$d/size") * 512 )) bytes"
done
ip link set lo up 2>/dev/null
for n in /sys/class/net/*; do
    [ "${n##*/}" = lo ] && continue
    [ -e "$n/address" ] && echo "yun-tiny: nic ${n##*/} $(cat "$n/address")"
done

case " $(cat /proc/cmdline) " in
*" yun.burn=1 "*)
    n=$(grep -c ^processor /proc/cpuinfo)
    echo "yun-tiny: burning $n CPUs"
    while [ "$n" -gt 0 ]; do
        (while :; do :; done) &
        n=$((n - 1))
    done
    ;;
esac

for arg in $(cat /proc/cmdline); do
    case "$arg" in
    yun.dirty=[0-9]*)
        # a busy guest (live migration's prediction and figures): N MiB of
        # tmpfs rewritten in place as fast as the CPU goes, each pass with
        # new content, so a content-sampling dirty rate sees every page
        # change and no page goes over the wire as a zero page
        mb=${arg#yun.dirty=}
        echo "yun-tiny: dirtying $mb MiB"
        (i=0
        set --
        for k in $(seq "$mb"); do set -- "$@" /tmp/yun-blk; done
        while :; do
            i=$((i + 1))
            yes "$i" | head -c 1048576 >/tmp/yun-blk
            cat "$@" 1<>/tmp/yun-dirty # in place: <> opens without truncating
        done) &
        ;;
    yun.spam=[0-9]*)
        seq 1 "${arg#yun.spam=}" | sed 's/^/yun-spam /'
        echo "YUN-SPAM-DONE"
        ;;
    esac
done

# A shell for `yun vm console`, respawned when the user exits it.
(
    while :; do
        setsid cttyhack sh -l </dev/ttyS0 >/dev/ttyS0 2>&1
        sleep 1
    done
) &

n=0
while :; do
    n=$((n + 1))
    echo "yun-heartbeat $n"
    sleep 2
done
EOF
chmod 755 "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$tmp/initrd.img"
rm -rf "$root"

cp "$kernel" "$tmp/vmlinuz"
qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 64M

cat >"$tmp/image.json" <<EOF
{"name":"tiny","format":"qcow2","disk":"disk.qcow2","kernel":"vmlinuz","initrd":"initrd.img","cmdline":"console=ttyS0 panic=-1 quiet","os":"busybox","kernel_version":"$kver","min_memory_mb":96}
EOF

# swap the finished build into place (image-lib.sh)
install_outdir "$tmp" "$out"
