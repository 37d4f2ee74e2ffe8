"""yund all-in-one on PostgreSQL (--store URL): the state of record in a
PostgreSQL database instead of <state-dir>/yun.db. A VM's life through it:
create, start, snapshot, a kill -9 and restart that re-attaches the running
QEMU from the rows in PostgreSQL, stop, delete; the invariants hold (they
read through the API, so they hold for either backend), and the rows are
checked in the database itself with psql.

Needs YUN_TEST_PG_URL (scripts/pg-test-server.sh start DIR prints one; .ci/run
sets it, so CI never skips). Each test gets a database of its own."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, Yund, pid_alive, qemu_pids_for, wait_for

PG_URL = os.environ.get("YUN_TEST_PG_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="YUN_TEST_PG_URL is not set")


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def with_db(url, name):
    """url naming database `name` instead (postgresql://[auth@host]/db?opts)."""
    base, sep, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    netloc = rest.split("/", 1)[0]
    return f"{scheme}://{netloc}/{name}{sep}{query}"


@pytest.fixture
def pg_db():
    name = f"yun_e2e_{os.getpid()}"
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name}")
    psql(PG_URL, f"CREATE DATABASE {name}")
    yield with_db(PG_URL, name)
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_vm_life_on_postgres(state_dir, pg_db):
    y = Yund(state_dir, ["--store", pg_db]).start()
    assert not os.path.exists(os.path.join(state_dir, "yun.db"))  # no SQLite beside it
    assert psql(pg_db, "SELECT version FROM schema_version") == "15"
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-pg", "--image", "tiny", "--memory", "96M", "--memory-min", "64M",
          "--no-merge", "--start")
    y.wait_marker("e2e-pg")
    # the memory policy's columns (schema 14)
    assert psql(pg_db, "SELECT memory_min_mb || ' ' || memory_swap_mb || ' ' || no_merge"
                " FROM vms WHERE name='e2e-pg'") == "64 -1 1"
    # its CPU model, fixed at create (schema 15): this host's baseline
    model = y.vm("e2e-pg")["cpu_model"]
    assert model and psql(pg_db, "SELECT cpu_model FROM vms WHERE name='e2e-pg'") == model
    y.yun("snapshot", "create", "e2e-pg", "s1")
    v = y.vm("e2e-pg")
    pid = v["pid"]
    assert v["state"] == "running" and pid_alive(pid)
    assert psql(pg_db, "SELECT state || ' ' || pid FROM vms WHERE name='e2e-pg'") == \
        f"running {pid}"
    assert psql(pg_db, "SELECT name || ' ' || state FROM snapshots") == "s1 ready"
    y.check_invariants()

    # yund dies; the QEMU does not; the restart finds it from PostgreSQL's rows
    y.kill9()
    assert pid_alive(pid)
    y.start()
    v = y.vm("e2e-pg")
    assert v["state"] == "running" and v["pid"] == pid and v["qmp_status"] == "running", v
    assert qemu_pids_for(state_dir) == [pid]  # re-attached, not started again
    assert [s["name"] for s in y.request("GET", "/v1/vms/e2e-pg/snapshots")[1]["snapshots"]] \
        == ["s1"]
    y.check_invariants(settled=True)

    y.yun("vm", "stop", "e2e-pg")
    assert psql(pg_db, "SELECT state || ' ' || pid FROM vms WHERE name='e2e-pg'") == "stopped 0"
    y.yun("vm", "delete", "e2e-pg")
    assert psql(pg_db, "SELECT count(*) FROM vms") == "0"
    assert psql(pg_db, "SELECT count(*) FROM snapshots") == "0"
    actions = psql(pg_db, "SELECT string_agg(action, ',' ORDER BY id) FROM events "
                          "WHERE object='e2e-pg'")
    assert "create" in actions and "delete" in actions, actions
    y.check_invariants(settled=True)
    assert y.stop() == 0


def test_refuses_newer_postgres_schema(state_dir, pg_db):
    y = Yund(state_dir, ["--store", pg_db]).start()
    y.stop()
    psql(pg_db, "UPDATE schema_version SET version = 99")
    p = subprocess.run([y.proc.args[0], "-s", state_dir, "--store", pg_db],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "schema version 99 is newer than this yund knows (" in p.stderr, p.stderr
    assert psql(pg_db, "SELECT version FROM schema_version") == "99"  # left alone


PLAIN_YUND = os.path.join(ROOT, "build", "yund")


@pytest.mark.skipif(shutil.which("valgrind") is None or not os.path.exists(PLAIN_YUND),
                    reason="needs valgrind and the plain build (make all); .ci/run provides both")
def test_shutdown_is_valgrind_clean_on_postgres(state_dir, pg_db):
    """test_valgrind.py's check with libpq in the picture: the connection, its
    prepared-statement cache and results all freed, no memory error."""
    y = Yund(state_dir)
    log = os.path.join(state_dir, "valgrind.log")
    args = ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=99", f"--log-file={log}", PLAIN_YUND, "-s", state_dir,
            "--store", pg_db]
    y.log = open(os.path.join(state_dir, "test-yund.log"), "ab")
    y.proc = subprocess.Popen(args, stdout=y.log, stderr=y.log)
    wait_for(lambda: y._healthy(), 60, what="yund under valgrind")
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-vgpg", "--image", "tiny", "--memory", "96M", "--start")
    y.yun("snapshot", "create", "e2e-vgpg", "s1")
    y.yun("vm", "stop", "--force", "e2e-vgpg")
    y.yun("events")
    assert y.request("POST", "/v1/vms", raw="{bad")[0] == 400
    y.yun("vm", "delete", "e2e-vgpg")
    y.proc.terminate()
    rc = y.proc.wait(timeout=60)
    report = open(log).read()
    assert rc == 0, report
    assert "definitely lost" not in report and "Invalid" not in report, report
