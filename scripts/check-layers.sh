#!/usr/bin/env bash
# check-layers.sh - fails when a lower layer includes a higher one.
#
# The layers, lowest first (a file may include its own layer and those
# below): lib < store < storage < compute < agent < ctl < network < monitor
# < api < daemon. sched and sim may include only lib and sched (sim also
# sim); agent and the layers above it may include sched (placement runs the
# simulator's own library; the host's balloon loop its pure policy,
# sched/balloon_policy.h); cli only lib, cli and sim (`yun sim` runs the simulator in-process:
# it is pure, with no store, host or daemon in it).
#
# storage, compute and agent (the host side) may not use the store at all
# (below).
#
# scripts/layers-allow.txt lists known temporary exceptions, one
# "FILE INCLUDED-HEADER" per line; it must end up empty.
set -u
cd "$(dirname "$0")/.."
order=(lib store storage compute agent ctl network monitor api daemon)
rank() {
    local i
    for i in "${!order[@]}"; do
        [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo -1
}
allow=scripts/layers-allow.txt
bad=0
while IFS= read -r line; do
    file=${line%%:*}
    inc=$(printf '%s' "$line" | sed -n 's/.*#include "\([^"]*\)".*/\1/p')
    [ -n "$inc" ] || continue
    from=$(printf '%s' "$file" | cut -d/ -f2)
    to=${inc%%/*}
    [ "$to" = "$inc" ] && continue # a local header of the same directory
    ok=1
    case "$from" in
    sched) [[ $to == lib || $to == sched ]] || ok=0 ;;
    sim) [[ $to == lib || $to == sched || $to == sim ]] || ok=0 ;;
    cli) [[ $to == lib || $to == cli || $to == sim ]] || ok=0 ;;
    *)
        rf=$(rank "$from")
        rt=$(rank "$to")
        if [ "$to" = sched ] && [ "$rf" -ge "$(rank agent)" ]; then
            ok=1
        elif [ "$rf" -lt 0 ] || [ "$rt" -lt 0 ]; then
            [[ $to == lib || $to == "$from" ]] || ok=0
        elif [ "$rt" -gt "$rf" ]; then
            ok=0
        fi
        ;;
    esac
    if [ $ok = 0 ]; then
        if [ -f "$allow" ] && grep -v "^#" "$allow" | grep -qxF "$file $inc"; then
            continue
        fi
        echo "layers: $file includes $inc ($from may not include $to)"
        bad=1
    fi
done < <(grep -Hn '^#include "' src/*/*.c src/*/*.h | sed 's/:[0-9]*:/:/')

# The seam: the host side (storage, compute, agent) holds no state of
# record. It may use the record types (store/records.h) but never opens,
# reads or writes the store: that is the controller's (src/ctl).
while IFS= read -r hit; do
    echo "layers: $hit (the host side may not use the store)"
    bad=1
done < <(grep -Hn -E '#include "store/(store|db)\.h"|\bstore_[a-z_]+\(' \
    src/storage/*.[ch] src/compute/*.[ch] src/agent/*.[ch] | grep -v ':[0-9]*: *\*\|:[0-9]*: */[*/]')
[ $bad = 0 ] && echo "layers: ok"
exit $bad
