#!/usr/bin/env bash
# One command from a fresh Debian machine to a booted VM:
#   installs the Debian packages yun needs, builds yund and yun, starts yund
#   (all-in-one, embedded SQLite in $YUN_STATE_DIR, default /var/lib/yun),
#   builds the tiny image, boots VM "demo" and shows its console.
# Re-running is safe: what exists is reused.
# Run it as root, or as a user who may sudo: it then re-runs itself through
# sudo (yund manages QEMU processes and cgroups, so it runs as root).
set -euo pipefail
STATE=${YUN_STATE_DIR:-/var/lib/yun}
VM=${1:-demo}

if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "up.sh: run it as root, or install sudo (yund manages QEMU processes and cgroups)" >&2
        exit 1
    fi
    echo "== not root: running through sudo"
    exec sudo env YUN_STATE_DIR="$STATE" YUN_UP_USER="$(id -un)" bash "$(readlink -f "$0")" "$@"
fi
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$(pwd)
PKGS="build-essential pkg-config libevent-dev libjansson-dev libsqlite3-dev libcmocka-dev \
    libglpk-dev libcurl4-openssl-dev libpq-dev qemu-system-x86 qemu-utils linux-image-cloud-amd64 \
    busybox-static cpio python3-pytest"
# shellcheck disable=SC2086 # PKGS is a list of words
if ! dpkg -s $PKGS >/dev/null 2>&1; then
    echo "== installing Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi
echo "== building"
make -j"$(nproc)" all >/dev/null
export YUN_STATE_DIR=$STATE
YUN=$ROOT/build/yun
if ! $YUN host >/dev/null 2>&1; then
    echo "== starting yund (state in $STATE, log in $STATE/yund.log)"
    "$ROOT/build/yund" -s "$STATE" --daemon
    for _ in $(seq 100); do $YUN host >/dev/null 2>&1 && break; sleep 0.1; done
fi
$YUN host
echo "== building the tiny image (kernel + busybox initramfs from Debian packages)"
$YUN image build tiny
if ! $YUN vm show "$VM" >/dev/null 2>&1; then
    $YUN vm create "$VM" --image tiny --cpus 1 --memory 128M
fi
state=$($YUN vm show "$VM" -o json | sed -n 's/.*"state": "\([a-z]*\)".*/\1/p')
[ "$state" = running ] || $YUN vm start "$VM"
echo "== waiting for $VM to boot"
for _ in $(seq 300); do
    $YUN vm logs "$VM" | grep -q YUN-TINY-INIT-OK && break
    sleep 0.2
done
$YUN vm list
echo "== console of $VM (last lines)"
$YUN vm logs "$VM" | grep -a -E 'YUN-TINY|yun-tiny|heartbeat' | tail -5
# The state directory is root's alone (mode 0700), API socket included, so
# yun is run as root, or through sudo by the user who asked.
if [ -n "${YUN_UP_USER:-}" ]; then
    RUN="sudo YUN_STATE_DIR=$STATE $YUN"
else
    RUN="YUN_STATE_DIR=$STATE $YUN"
fi
cat <<EOT

yund is running and VM '$VM' has booted. Its state, $STATE, is root's alone
(mode 0700), so run yun as root${YUN_UP_USER:+ (here: through sudo)}:
  $RUN vm console $VM      # interactive; Ctrl-] detaches
  $RUN events -f
  $RUN vm stop $VM
yund's log: $STATE/yund.log (root only too).
EOT
