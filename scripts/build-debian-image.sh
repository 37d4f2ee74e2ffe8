#!/usr/bin/env bash
# build-debian-image.sh OUTDIR - builds yun's "debian" guest image: a Debian 12
# (bookworm) root filesystem made with debootstrap from the Debian mirror apt
# uses on this machine, booted directly (kernel + initrd outside the disk).
#
# OUTDIR gets
#   disk.qcow2  ext4 root filesystem (no partition table), label "yunroot",
#               2 GiB virtual size (YUN_DEBIAN_DISK_SIZE), compressed qcow2
#   vmlinuz     the image's own linux-image-cloud-amd64 kernel
#   initrd.img  its initramfs (virtio_pci, virtio_blk, virtio_scsi, ext4)
#   image.json  same schema as build-tiny-image.sh writes; min_memory_mb 256:
#               at 96 MiB the OOM killer ends cloud-init during boot, 128 MiB
#               boots to the login prompt, 256 leaves room for a real workload
#
# The guest runs systemd, udev, cloud-init (datasources NoCloud and None; the
# NoCloud seed is a disk or CD labelled "cidata"), ifupdown + isc-dhcp-client
# (cloud-init writes /etc/network/interfaces.d/50-cloud-init, DHCP on the
# first NIC by default), openssh-server (host keys are made on first boot,
# root cannot log in with a password), qemu-guest-agent (started by udev when
# /dev/virtio-ports/org.qemu.guest_agent.0 appears) and a getty on ttyS0.
# /etc/machine-id is empty, so every VM gets its own on first boot.
#
# Everything is built in OUTDIR.tmp.$$ and swapped into place at the end, so a
# failed or interrupted run never leaves a half-written image; running it again
# simply rebuilds. Needs root (debootstrap, chroot), debootstrap, e2fsprogs
# (mkfs.ext4 -d, >= 1.43) and qemu-img; no loop devices and no mounts other than
# the /proc and /sys debootstrap and the package scripts need inside the chroot.
#
# Environment:
#   YUN_IMAGE_CACHE=DIR     reuse DIR/debian-<key>/ if present, where key is a
#                           hash of this script and the mirror URLs; store the
#                           finished image there otherwise. Downloaded .debs
#                           are kept in DIR/debian-debs/ for the next cold build.
#   YUN_DEBIAN_MIRROR=URL   Debian mirror (default: the one apt uses here)
#   YUN_DEBIAN_SECURITY=URL debian-security mirror ("none" skips security
#                           updates; default: the one apt uses here)
#   YUN_DEBIAN_DISK_SIZE=N  size of the root filesystem (default 2G)
#
# Progress goes to stderr; OUTDIR is printed on stdout at the end.
set -euo pipefail
# shellcheck source=scripts/image-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/image-lib.sh"

suite=bookworm
label=yunroot
cmdline="root=LABEL=$label rw console=ttyS0 quiet"

die() {
    echo "build-debian-image: $*" >&2
    exit 1
}
say() {
    echo "build-debian-image: [$(date +%T)] $*" >&2
}

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
out=${1%/}
[ -n "$out" ] || die "empty OUTDIR"
disk_size=${YUN_DEBIAN_DISK_SIZE:-2G}

# ---- mirrors ----------------------------------------------------------------
# The first http(s) URI in apt's sources that is a Debian archive
# (.../debian) and a security archive (.../debian-security), in both the
# one-line and the deb822 format.
apt_uris() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        case "$f" in
        *.sources) sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' ' '\n' ;;
        *) sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' "$f" ;;
        esac
    done | sed 's:/*$::' | grep -E '^https?://' || true
}
uris=$(apt_uris)
mirror=${YUN_DEBIAN_MIRROR:-$(grep -E '/debian$' <<<"$uris" | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${YUN_DEBIAN_SECURITY:-$(grep -E '/debian-security$' <<<"$uris" | head -n 1 || true)}
security=${security:-none}

# ---- cache lookup -------------------------------------------------------------
files=(disk.qcow2 vmlinuz initrd.img image.json)
key=$( (cat "${BASH_SOURCE[0]}" && echo "$mirror $security $disk_size") | sha256sum | cut -c1-16)
cache=
if [ -n "${YUN_IMAGE_CACHE:-}" ]; then
    mkdir -p "$YUN_IMAGE_CACHE"
    YUN_IMAGE_CACHE=$(cd "$YUN_IMAGE_CACHE" && pwd)
    cache="$YUN_IMAGE_CACHE/debian-$key"
fi

tmp="$out.tmp.$$"
root="$tmp/rootfs"
# Unmount anything left mounted inside the chroot (deepest first) before
# deleting it, and never cross into another filesystem while deleting.
unmount_root() {
    local m
    [ -d "$root" ] || return 0
    awk -v r="$(cd "$root" && pwd -P)" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts |
        sort -r | while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}
cleanup() {
    unmount_root
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf --one-file-system "$tmp"
mkdir -p "$tmp"

publish() {
    # swap the finished build into place (image-lib.sh)
    install_outdir "$tmp" "$out"
}

cached_ok() {
    local f
    for f in "${files[@]}"; do
        [ -s "$1/$f" ] || return 1
    done
}

if [ -n "$cache" ] && cached_ok "$cache"; then
    say "using cached image $cache"
    for f in "${files[@]}"; do
        cp --sparse=always "$cache/$f" "$tmp/$f"
    done
    publish
    exit 0
fi

# ---- checks -----------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"
for tool in debootstrap chroot mkfs.ext4 qemu-img sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install debootstrap e2fsprogs qemu-utils)"
done
{ mkfs.ext4 2>&1 || true; } | grep -q 'root-directory' ||
    die "mkfs.ext4 cannot populate a file system (-d); e2fsprogs >= 1.43 is needed"

# ---- debootstrap --------------------------------------------------------------
# A minbase system only: the rest is installed with apt inside it (below),
# which, unlike debootstrap, resolves virtual packages, and which runs after
# the initramfs configuration is in place, so the initramfs is built once.
packages=(
    linux-image-cloud-amd64
    systemd-sysv udev dbus libpam-systemd libnss-systemd
    ifupdown isc-dhcp-client iproute2 netbase iputils-ping
    openssh-server qemu-guest-agent cloud-init sudo
    e2fsprogs ca-certificates less procps
)
debootstrap_opts=(--variant=minbase)
debs=
if [ -n "$cache" ]; then
    debs="$YUN_IMAGE_CACHE/debian-debs"
    mkdir -p "$debs"
    debootstrap_opts+=(--cache-dir="$debs")
fi
say "debootstrap $suite from $mirror into $root"
mkdir -p "$root"
log="$tmp/debootstrap.log"
if ! debootstrap "${debootstrap_opts[@]}" "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    if [ -r "$root/debootstrap/debootstrap.log" ]; then
        tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    fi
    die "debootstrap failed"
fi
unmount_root

# ---- configuration (before the kernel) ------------------------------------------
say "configuring"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# No documentation, manual pages or translations: now and for later installs.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-yun-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian"
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true

# apt sources for the guest (and for the kernel + updates installed below).
{
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ "$security" = none ] || echo "deb $security $suite-security main"
} >"$root/etc/apt/sources.list"

# initramfs: only the modules listed here and what the hooks add, so it is
# small and quick to unpack; the virtio disk, SCSI and PCI drivers and ext4
# must be in it for root=LABEL=yunroot to be found.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
cat >"$root/etc/initramfs-tools/conf.d/yun" <<'EOF'
MODULES=list
COMPRESS=zstd
# The hooks cannot see the root device in the chroot; this puts fsck.ext4 in
# the initramfs, which checks the root before mounting it (rw).
FSTYPE=ext4
EOF
cat >"$root/etc/initramfs-tools/hooks/yun-virtio" <<'EOF'
#!/bin/sh
# yun: the guest's root is a virtio disk with ext4 on it.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_scsi sd_mod virtio_net virtio_console ext4 crc32c_generic; do
    force_load "$m" 2>/dev/null || manual_add_modules "$m"
done
EOF
chmod 755 "$root/etc/initramfs-tools/hooks/yun-virtio"

cat >"$root/etc/fstab" <<EOF
# <file system>  <mount point> <type> <options>          <dump> <pass>
LABEL=$label     /             ext4   errors=remount-ro  0      1
EOF
echo debian >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	debian
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
echo "LANG=C.UTF-8" >"$root/etc/default/locale"

# Keep the package scripts from starting daemons inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# ---- kernel and updates ---------------------------------------------------------
say "installing packages, kernel and updates"
# The build host's resolver, only while apt runs (debootstrap copies it too).
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if [ -n "$debs" ]; then # packages downloaded by earlier builds
    cp -n "$debs"/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
fi
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
log="$tmp/apt.log"
if ! {
    in_root apt-get -q update &&
        in_root apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade &&
        in_root apt-get -q -y -o Dpkg::Options::=--force-confold install --no-install-recommends "${packages[@]}"
} >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "installing packages failed"
fi
unmount_root
if [ -n "$debs" ]; then
    cp -n "$root"/var/cache/apt/archives/*.deb "$debs/" 2>/dev/null || true
fi
# Empty: dhclient fills it in the guest.
rm -f "$root/etc/resolv.conf"
install -m 644 /dev/null "$root/etc/resolv.conf"

kernel=$(printf '%s\n' "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
[ -e "$kernel" ] || die "no kernel in $root/boot"
kver=${kernel##*/vmlinuz-}
initrd="$root/boot/initrd.img-$kver"
[ -e "$initrd" ] || die "no $initrd"
# Older kernels left by the upgrade (none normally).
for k in "$root"/boot/vmlinuz-*; do
    v=${k##*/vmlinuz-}
    [ "$v" = "$kver" ] || in_root apt-get -q -y purge "linux-image-$v" >&2
done

# ---- guest services -------------------------------------------------------------
say "configuring guest services"
mkdir -p "$root/etc/cloud/cloud.cfg.d"
cat >"$root/etc/cloud/cloud.cfg.d/90-yun.cfg" <<'EOF'
# yun: seed from a NoCloud disk/CD labelled "cidata" (or the kernel cmdline
# ds=nocloud), otherwise run with no data at all.
datasource_list: [ NoCloud, None ]
# C.UTF-8 is built into glibc: no locale-gen on first boot.
locale: C.UTF-8
# Networking through ifupdown (/etc/network/interfaces.d/50-cloud-init).
system_info:
  network:
    renderers: [ eni ]
# No root login with a password (root's password is locked anyway).
disable_root: true
ssh_pwauth: false
# /etc/hosts from cloud-init's template: the hostname resolves (sudo, etc.).
manage_etc_hosts: true
# No DSA host key (sshd does not use it). Under TCG every key costs seconds.
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
# There is no GRUB: direct kernel boot.
grub_dpkg:
  enabled: false
EOF

mkdir -p "$root/etc/ssh/sshd_config.d"
cat >"$root/etc/ssh/sshd_config.d/50-yun.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
# Host keys are per VM: cloud-init's ssh module makes them before sshd starts;
# this covers a boot without cloud-init.
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/yun-hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=-/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF

# The guest agent starts as soon as its port appears (udev), not after
# sysinit.target, which waits for cloud-init's first two stages: the host can
# talk to the agent well before cloud-init is done. (The hostname it reports
# is cloud-init's only once cloud-init's init stage has run.)
mkdir -p "$root/etc/systemd/system/qemu-guest-agent.service.d"
cat >"$root/etc/systemd/system/qemu-guest-agent.service.d/yun-early.conf" <<'EOF'
[Unit]
DefaultDependencies=no
After=systemd-remount-fs.service local-fs.target systemd-journald.socket
Conflicts=shutdown.target
Before=shutdown.target
EOF

# Serial console login (systemd would also start it for console=ttyS0).
mkdir -p "$root/etc/systemd/system/getty.target.wants"
ln -sf /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"

# Do not let one NIC without DHCP hold the boot for minutes.
mkdir -p "$root/etc/systemd/system/networking.service.d"
cat >"$root/etc/systemd/system/networking.service.d/yun-timeout.conf" <<'EOF'
[Service]
TimeoutStartSec=60
EOF
sed -i 's/^#\?timeout .*/timeout 30;/' "$root/etc/dhcp/dhclient.conf"

# Periodic jobs a short-lived VM does not need.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    in_root systemctl disable "$unit" >/dev/null 2>&1 || true
done
in_root systemctl enable ssh.service qemu-guest-agent.service >/dev/null 2>&1 || true
in_root systemctl set-default multi-user.target >/dev/null 2>&1

# ---- cleanup ------------------------------------------------------------------
say "cleaning up"
in_root apt-get -q -y clean >&2
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
rm -f "$root/var/lib/systemd/random-seed"
rm -rf "$root"/var/lib/cloud/* "$root"/tmp/* "$root"/var/tmp/* "$root/debootstrap"
find "$root/var/log" -type f -delete
rm -f "$root/root/.bash_history"

# ---- filesystem and disk ------------------------------------------------------------
say "making ext4 ($disk_size) from the root tree"
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
raw="$tmp/root.raw"
truncate -s "$disk_size" "$raw"
# The guest's own mke2fs.conf, so its e2fsck knows every feature used.
MKE2FS_CONFIG="$root/etc/mke2fs.conf" mkfs.ext4 -q -F -L "$label" -m 1 \
    -E root_owner=0:0 -d "$root" "$raw" >&2
# Empty the tree now: the qcow2 conversion needs the disk space more.
rm -rf --one-file-system "$root"
say "converting to qcow2"
qemu-img convert -c -f raw -O qcow2 "$raw" "$tmp/disk.qcow2"
rm -f "$raw" "$tmp"/*.log

cat >"$tmp/image.json" <<EOF
{"name":"debian","format":"qcow2","disk":"disk.qcow2","kernel":"vmlinuz","initrd":"initrd.img","cmdline":"$cmdline","os":"debian-12","kernel_version":"$kver","min_memory_mb":256}
EOF

if [ -n "$cache" ] && ! cached_ok "$cache"; then
    say "storing in cache $cache"
    ctmp="$cache.tmp.$$"
    rm -rf "$ctmp"
    mkdir -p "$ctmp"
    for f in "${files[@]}"; do
        cp --sparse=always "$tmp/$f" "$ctmp/$f"
    done
    rm -rf "$cache"
    mv -T "$ctmp" "$cache" 2>/dev/null || rm -rf "$ctmp"
    # Images made by other versions of this script are stale now.
    for d in "$YUN_IMAGE_CACHE"/debian-????????????????; do
        [ "$d" = "$cache" ] || rm -rf "$d"
    done
fi
say "done: kernel $kver, disk $(du -h "$tmp/disk.qcow2" | cut -f1)"
publish
