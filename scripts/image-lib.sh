# shellcheck shell=bash
# image-lib.sh - shell pieces the image builders share; sourced, not run.

# install_outdir TMP OUT: replaces OUT with the finished build in TMP. Two
# renames, because rename(2) cannot atomically replace a non-empty directory;
# the window between them is the only time OUT is missing, and it never holds
# a partial image. Clears the EXIT trap (the build is no longer temporary)
# and prints OUT.
install_outdir() {
    local tmp=$1 out=$2
    if [ -e "$out" ]; then
        local old="$out.old.$$"
        mv -T "$out" "$old"
        mv -T "$tmp" "$out"
        rm -rf "$old"
    else
        mv -T "$tmp" "$out"
    fi
    trap - EXIT
    echo "$out"
}
