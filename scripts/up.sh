#!/usr/bin/env bash
# One command from a fresh Debian machine to a booted VM:
#   installs the Debian packages yun needs, builds yund and yun, starts yund
#   (all-in-one, embedded SQLite in $YUN_STATE_DIR, default /var/lib/yun),
#   builds the tiny image, boots VM "demo" and shows its console.
# Re-running is safe: what exists is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${YUN_STATE_DIR:-/var/lib/yun}
VM=${1:-demo}

if [ "$(id -u)" != 0 ]; then
    echo "up.sh: run as root (yund manages QEMU processes and cgroups)" >&2
    exit 1
fi
if ! dpkg -s qemu-system-x86 libevent-dev libjansson-dev libsqlite3-dev libglpk-dev libcurl4-openssl-dev \
        linux-image-cloud-amd64 busybox-static >/dev/null 2>&1; then
    echo "== installing Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends build-essential pkg-config libevent-dev \
        libjansson-dev libsqlite3-dev libcmocka-dev libglpk-dev libcurl4-openssl-dev qemu-system-x86 qemu-utils \
        linux-image-cloud-amd64 busybox-static cpio python3-pytest >/dev/null
fi
echo "== building"
make -j"$(nproc)" all >/dev/null
export YUN_STATE_DIR=$STATE
YUN=./build/yun
if ! $YUN host >/dev/null 2>&1; then
    echo "== starting yund (state in $STATE, log in $STATE/yund.log)"
    ./build/yund -s "$STATE" --daemon
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
cat <<EOT

yund is running and VM '$VM' has booted. Try:
  export YUN_STATE_DIR=$STATE
  $YUN vm console $VM      # interactive; Ctrl-] detaches
  $YUN events -f
  $YUN vm stop $VM
EOT
