#!/usr/bin/env bash
# make-deb.sh [OUTDIR] - builds yun_<version>_amd64.deb with Debian's own
# toolchain (dpkg-buildpackage -us -uc -b) from this tree, and moves what
# dpkg-buildpackage leaves in the parent directory (the .deb, .buildinfo,
# .changes) into OUTDIR (default build/deb-out), so nothing outside the
# repo's build directory is left behind. Prints the .deb's path last.
# -jN: one make job per CPU (dpkg-buildpackage exports MAKEFLAGS to the rules).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/deb-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
ver=$(dpkg-parsechangelog -S Version)
parent=$(cd .. && pwd)
# the commit, baked in (a copy of the tree outside git passes YUN_COMMIT)
YUN_COMMIT=${YUN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
export YUN_COMMIT
dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$out/build-$ver.log" 2>&1 || {
    tail -40 "$out/build-$ver.log" >&2
    exit 1
}
for f in "$parent/yun_${ver}_amd64.deb" "$parent/yun-dbgsym_${ver}_amd64.deb" \
         "$parent/yun_${ver}_amd64.buildinfo" "$parent/yun_${ver}_amd64.changes"; do
    [ -e "$f" ] && mv -f "$f" "$out/"
done
echo "$out/yun_${ver}_amd64.deb"
