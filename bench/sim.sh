#!/usr/bin/env bash
# bench/sim.sh - fidelity, speed and scale figures of `yun sim` against the
# CloudSim 3.0.3 reference run in /work/shared/design.md.
#
#   bench/sim.sh                 everything (takes a few minutes: scale runs)
#   QUICK=1 bench/sim.sh         fidelity + speed only
#   YUN_SIM=/path/to/yun ...     binary that understands `sim ...` (default
#                                build/yun, else a driver built from bench/sim_driver.c)
#   RUNS=5 SCALE_RUNS=1          repetitions (medians are reported)
#
# Timings are wall-clock medians on whatever machine runs this; the reference
# machine has 2 cores and QEMU guests may be running next to us, so expect noise
# of +-20 % on the sub-second figures.
set -euo pipefail
cd "$(dirname "$0")/.."
TRACE=${TRACE:-/work/shared/traces/planetlab/20110303}
RUNS=${RUNS:-5}
SCALE_RUNS=${SCALE_RUNS:-1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -z "${YUN_SIM:-}" ]; then
    # build/yun only if it carries this simulator (its `sim run --help` knows --format)
    if [ -x build/yun ] && build/yun sim run --help 2>/dev/null | grep -q -- '--format'; then
        YUN_SIM=build/yun
    else
        make -s BUILD="$TMP/b" "$TMP/b/libyun.a" >/dev/null
        cc -O2 -std=c11 -D_GNU_SOURCE -Isrc bench/sim_driver.c "$TMP/b/libyun.a" \
            $(pkg-config --libs libevent jansson sqlite3) -lglpk -lm -lpthread -o "$TMP/yun"
        YUN_SIM="$TMP/yun"
    fi
fi
echo "driver: $YUN_SIM   runs: $RUNS   host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# one timed run: prints "wall_s rss_kb" and leaves the CSV line in $TMP/out
timed() {
    /usr/bin/time -v -o "$TMP/tv" "$YUN_SIM" "$@" >"$TMP/out"
    local w r
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$TMP/tv")
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/tv")
    echo "$w $r"
}

# name energy migrations slav% slatah% pdm%   (CloudSim 3.0.3, day 20110303)
REF="npa 2410.80 0 - - -
dvfs 764.96 0 - - -
thr-mmt-0.8 198.08 27728 0.00357 5.00 0.07
iqr-mmt-1.5 193.63 27592 0.00342 5.02 0.07
mad-mmt-2.5 189.79 27781 0.00357 5.09 0.07
lr-mmt-1.2 167.83 27649 0.00432 5.72 0.08
lr-mc-1.2 153.87 23351 0.00703 7.02 0.10
lr-rs-1.2 152.96 22211 0.00677 7.08 0.10"

echo
echo "== fidelity: yun sim --compat cloudsim vs CloudSim 3.0.3 (day 20110303, 1052 VMs, 800 hosts)"
printf '%-12s %10s %10s %6s | %8s %8s %6s | %9s %9s %6s | %7s %7s | %6s %6s | %7s\n' \
    policy kWh cloudsim ratio migr cloudsim ratio 'SLAV%' cloudsim ratio 'SLATAH%' cloudsim 'PDM%' cs wall_s
while read -r p e m s sl pd; do
    walls=""
    for i in $(seq "$RUNS"); do
        walls="$walls $(timed sim run --trace "$TRACE" --policy "$p" --compat cloudsim --format csv | cut -d' ' -f1)"
    done
    w=$(echo $walls | tr ' ' '\n' | median)
    IFS=, read -r _ _ _ ye ym ysl ypd ys _ _ < <(tail -1 "$TMP/out")
    awk -v p="$p" -v e="$e" -v m="$m" -v s="$s" -v sl="$sl" -v pd="$pd" -v ye="$ye" -v ym="$ym" \
        -v ys="$ys" -v ysl="$ysl" -v ypd="$ypd" -v w="$w" 'BEGIN {
        er = ye / e; mr = (m > 0) ? ym / m : (ym == 0 ? 1 : 0)
        sr = (s == "-") ? "-" : sprintf("%.2f", (ys * 100) / s)
        printf "%-12s %10.2f %10.2f %6.3f | %8d %8d %6.3f | %9.5f %9s %6s | %7.2f %7s | %6.3f %6s | %7.3f\n",
            p, ye, e, er, ym, m, mr, ys * 100, s, sr, ysl * 100, sl, ypd * 100, pd, w }'
done <<<"$REF"

echo
echo "== speed and memory: lr-mmt-1.2 on the PlanetLab day, median of $RUNS (CloudSim: 21.8 s, 2.4 GB)"
: >"$TMP/wr"
for i in $(seq "$RUNS"); do
    timed sim run --trace "$TRACE" --policy lr-mmt-1.2 --compat cloudsim --format csv >>"$TMP/wr"
done
w=$(cut -d' ' -f1 "$TMP/wr" | median)
r=$(cut -d' ' -f2 "$TMP/wr" | median)
awk -v w="$w" -v r="$r" 'BEGIN { printf "wall %.3f s (%.0fx faster than 21.8 s)   peak RSS %.1f MB (CloudSim 2400 MB)\n", w, 21.8 / w, r / 1024 }'

echo
echo "== placement: 100,000 VMs onto 10,000 hosts (one at a time, filters + weighers), median of $RUNS"
for pol in pack spread power-aware first-fit; do
    : >"$TMP/pl"
    for i in $(seq "$RUNS"); do
        "$YUN_SIM" sim place --vms 100000 --hosts 10000 --policy "$pol" --format json |
            awk -F': ' '/"seconds"/ {gsub(/[ ,]/, "", $2); print $2}' >>"$TMP/pl"
    done
    printf '%-12s %.3f s\n' "$pol" "$(median <"$TMP/pl")"
done

[ "${QUICK:-0}" = 1 ] && exit 0

echo
echo "== growth: synthetic 24 h (288 x 300 s), lr-mmt-1.2 --compat cloudsim --sample 64 --drain-limit 64, one core, median of $SCALE_RUNS"
printf '%9s %9s %10s %12s %10s\n' hosts vms wall_s migrations 'RSS MB'
for hv in "1000 2000" "5000 10000" "20000 40000" "50000 100000" "100000 200000"; do
    set -- $hv
    : >"$TMP/g"
    for i in $(seq "$SCALE_RUNS"); do
        timed sim run --synth "$2" --hosts "$1" --policy lr-mmt-1.2 --compat cloudsim --sample 64 --drain-limit 64 --format csv >>"$TMP/g"
    done
    mig=$(tail -1 "$TMP/out" | cut -d, -f5)
    printf '%9d %9d %10.2f %12d %10.0f\n' "$1" "$2" "$(cut -d' ' -f1 "$TMP/g" | median)" "$mig" \
        "$(cut -d' ' -f2 "$TMP/g" | median | awk '{print $1/1024}')"
done
