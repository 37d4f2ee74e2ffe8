#!/usr/bin/env bash
# bench/placement.sh - placement latency (ctl_place: the store's compact
# reads, the sched model, filters and weighers, the explanation) with 1,000
# and 10,000 registered hosts in a SQLite store made by the real migrations;
# goal p99 < 5 ms at 10,000. A C driver (bench/place_driver.c) links the
# same libyun.a as yund.
#
#   bench/placement.sh                 1,000 and 10,000 hosts, 2 VM rows per host
#   ITER=500 POLICY=pack bench/placement.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-300}
POLICY=${POLICY:-spread}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
make -s -j2 build/libyun.a >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc $(pkg-config --cflags jansson libpq) bench/place_driver.c \
    build/libyun.a $(pkg-config --libs libevent libevent_pthreads jansson sqlite3 libpq libcurl) \
    -lglpk -lm -lpthread -o "$TMP/place_driver"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 1000 10000; do
    "$TMP/place_driver" "$n" $((2 * n)) "$ITER" "$TMP" "$POLICY"
    echo
done
