#!/usr/bin/env bash
# pg-test-server.sh start|stop DIR - a throwaway PostgreSQL cluster for the
# store's tests, in DIR: Debian's initdb/pg_ctl run as the `postgres` user
# (PostgreSQL refuses to run as root), no TCP at all (listen_addresses=''),
# a unix socket inside DIR. `start` prints the URL to give yund --store or
# YUN_TEST_PG_URL; `stop` stops the server and removes DIR.
#
# PG_LISTEN=ADDR [PG_NETNS=NS] scripts/pg-test-server.sh start DIR: TCP on
# ADDR:5432 as well (any client trusted, for a test's own namespaces), the
# server run inside network namespace NS; the URL printed is the TCP one.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && bindir=$d
    done
fi
[ -n "$bindir" ] && [ -x "$bindir/pg_ctl" ] || {
    echo "$0: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    exit 1
}

# as the postgres user when we are root, as ourselves otherwise
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
            -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    listen=${PG_LISTEN:-}
    inns=()
    if [ -n "$listen" ]; then
        grep -q "^host all all 0.0.0.0/0 trust" "$dir/data/pg_hba.conf" ||
            echo "host all all 0.0.0.0/0 trust" >>"$dir/data/pg_hba.conf"
        [ -n "${PG_NETNS:-}" ] && inns=(ip netns exec "$PG_NETNS")
    fi
    # fsync off: a test cluster, thrown away; durability is not what is tested
    if [ "$(id -u)" = 0 ]; then
        run=("${inns[@]}" runuser -u postgres --)
    else
        run=("${inns[@]}")
    fi
    "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses='$listen' -k $dir -c fsync=off -c full_page_writes=off" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    if [ -n "$listen" ]; then
        echo "postgresql://postgres@$listen:5432/postgres"
    else
        # libpq URL with the socket directory as host (percent-encoded '/')
        echo "postgresql:///postgres?host=$(printf %s "$dir" | sed 's|/|%2F|g')&user=postgres"
    fi
    ;;
stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
