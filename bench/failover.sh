#!/usr/bin/env bash
# bench/failover.sh - controller failover figures (docs/cluster.md "Leader"):
# the time from the leader's death (kill -9) to the standby serving writes,
# and from the leader's hang (SIGSTOP: its sessions linger, like a cut
# network) to the same, each the median of RUNS (default 3). Two
# `yund --role controller` on 127.0.0.1 against a fresh PostgreSQL database;
# a write is POST /v1/alert-rules (a fenced table, no host needed), polled
# every 20 ms.
#
#   YUN_TEST_PG_URL=postgresql:///postgres?host=... bench/failover.sh
#   RUNS=5 LEASE_MS=5000 YUN_BUILD=build bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${YUN_TEST_PG_URL:?set YUN_TEST_PG_URL (scripts/pg-test-server.sh prints one)}
RUNS=${RUNS:-3}
LEASE_MS=${LEASE_MS:-5000}
BUILD=${YUN_BUILD:-build}
YUND=$BUILD/yund
TOKEN=bench-failover-token-0123456789
DBNAME=yun_bench_failover_$$
TMP=$(mktemp -d /tmp/yun-failover-XXXXXX)
PIDS=()

# the URL of database $1 on the server of $PG (postgresql://[auth@host]/db?opts)
db_url() {
    local base=${PG%%\?*} query=
    [[ $PG == *\?* ]] && query="?${PG#*\?}"
    local rest=${base#*://}
    echo "${base%%://*}://${rest%%/*}/$1$query"
}
DB=$(db_url "$DBNAME")

cleanup() {
    for p in "${PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    psql -X -q -d "$PG" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
psql -X -q -d "$PG" -c "CREATE DATABASE $DBNAME" >/dev/null

PORTS=()
for i in 0 1; do
    PORTS[i]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$TMP/c$i"
    echo "$TOKEN" >"$TMP/c$i/token"
    echo "bench-join-token-0123456789" >"$TMP/c$i/join"
done
PID=(0 0)

start() { # start controller $1 (it leads or stands by)
    local i=$1 d=$TMP/c$1
    "$YUND" -s "$d" --store "$DB" --set role=controller --set "listen=127.0.0.1:${PORTS[i]}" \
        --set "advertise_url=http://127.0.0.1:${PORTS[i]}" --set "token_file=$d/token" \
        --set "join_token_file=$d/join" --set "leader_lease_ms=$LEASE_MS" >>"$d/log" 2>&1 &
    PID[i]=$!
    PIDS+=("$!")
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:${PORTS[i]}/v1/health" >/dev/null && return 0
        sleep 0.05
    done
    echo "controller $i did not start: $(tail -5 "$d/log")" >&2
    exit 1
}

leads() { curl -s "http://127.0.0.1:${PORTS[$1]}/v1/health" | grep -q '"leader":true'; }

n=0
write() { # one write to controller $1: 0 when served
    n=$((n + 1))
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H "Authorization: Bearer $TOKEN" \
        -d "{\"name\":\"bench-$n\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":90}" \
        "http://127.0.0.1:${PORTS[$1]}/v1/alert-rules" || true)
    [[ $code == 2* ]]
}

now_ms() { date +%s%3N; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# one failover: the leader gets signal $1; RESULT: ms to the standby's first write
failover() {
    local sig=$1 l s
    if leads 0; then l=0 s=1; else l=1 s=0; fi
    write "$l" || { echo "the leader does not write" >&2; exit 1; }
    local t0
    sleep 1 # the standby has tried for the lock at least once
    t0=$(now_ms)
    kill "-$sig" "${PID[l]}"
    until write "$s"; do
        sleep 0.02
        if (($(now_ms) - t0 > 60000)); then
            echo "no takeover in 60 s" >&2
            exit 1
        fi
    done
    RESULT=$(($(now_ms) - t0))
    if [[ $sig == STOP ]]; then
        kill -CONT "${PID[l]}"
        # it finds its lease over and exits 75
        local rc=0
        wait "${PID[l]}" || rc=$?
        [[ $rc == 75 ]] || echo "warning: the hung leader exited $rc, not 75" >&2
    else
        wait "${PID[l]}" 2>/dev/null || true
    fi
    start "$l" # back as the standby
}

start 0
for _ in $(seq 100); do leads 0 && break; sleep 0.05; done
start 1

kill9=() hang=()
for _ in $(seq "$RUNS"); do
    failover KILL
    kill9+=("$RESULT")
done
for _ in $(seq "$RUNS"); do
    failover STOP
    hang+=("$RESULT")
done
echo "failover (lease ${LEASE_MS} ms, ${RUNS} runs each; goal under 10 s):"
echo "  leader kill -9 -> standby serving writes: median $(printf '%s\n' "${kill9[@]}" | median) ms (${kill9[*]})"
echo "  leader hang (SIGSTOP) -> standby serving writes: median $(printf '%s\n' "${hang[@]}" | median) ms (${hang[*]})"
