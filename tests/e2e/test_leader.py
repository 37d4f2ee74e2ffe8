"""Controller failover (docs/cluster.md "Leader"): two `yund --role controller`
on 127.0.0.1 (two ports) against one PostgreSQL database. One leads; the
other stands by answering 503 not_leader with the leader's URL; a kill -9 of
the leader, or a hang (SIGSTOP, like a cut network: its sessions linger),
has the standby serving writes within 10 s (measured and printed); the CLI
with --url listing both follows; the hung leader, continued, cannot write
and steps down (exit 75). Writes are alert rules: rows of a fenced table
that need no host.

Needs YUN_TEST_PG_URL (skipped without); each test makes its own database."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import YUN, YUND, Yund, wait_for
from conftest import alert_rule as rule
from conftest import wait_serving as conftest_wait_serving
from test_store_pg import psql, with_db

PG_URL = os.environ.get("YUN_TEST_PG_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="YUN_TEST_PG_URL is not set")
TOKEN = "leader-test-token-0123456789"
LEASE_MS = 3000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture
def pg_db():
    name = f"yun_e2e_leader_{os.getpid()}"
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(PG_URL, f"CREATE DATABASE {name}")
    yield with_db(PG_URL, name)
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Controller(Yund):
    def __init__(self, state_dir, db, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        for f, text in (("token", TOKEN), ("join", "join-token-0123456789abcdef")):
            with open(os.path.join(state_dir, f), "w") as fh:
                fh.write(text + "\n")
        super().__init__(state_dir, [
            "--store", db, "--set", "role=controller",
            "--set", f"listen=127.0.0.1:{port}", "--set", f"advertise_url={self.url}",
            "--set", f"token_file={state_dir}/token",
            "--set", f"join_token_file={state_dir}/join",
            "--set", f"leader_lease_ms={LEASE_MS}"])

    def tcp(self, method, path, body=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def health(self):
        st, h = self.request("GET", "/v1/health", timeout=10)
        assert st == 200, h
        return h

    def leads(self):
        return self.proc.poll() is None and self.health()["leader"]


@pytest.fixture
def two(pg_db):
    dirs = [tempfile.mkdtemp(prefix="yun-e2e-ld-", dir="/tmp") for _ in range(2)]
    cs = [Controller(d, pg_db, free_port()) for d in dirs]
    yield cs
    for c in cs:
        if c.proc and c.proc.poll() is None:
            try:
                os.kill(c.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            c.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def start_pair(two):
    a, b = two
    a.start()
    wait_for(a.leads, 15, what="the first controller to lead")
    b.start()
    wait_for(lambda: b.health()["leader_url"] == a.url, 10, what="the standby to know the leader")
    return a, b


def cli(urls, *args, check=True, timeout=60):
    env = dict(os.environ, YUN_TOKEN=TOKEN)
    env.pop("YUN_SOCKET", None)
    p = subprocess.run([YUN, "--url", ",".join(urls), *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p


def add_rule_cli(urls, name):
    return cli(urls, "alert", "rule", "add", name, "--metric", "cpu", "--op", ">",
               "--threshold", "90", "--window", "60s", "--for", "30s")


def rules(c):
    st, r = c.tcp("GET", "/v1/alert-rules")
    assert st == 200, r
    return sorted(x["name"] for x in r["rules"])


def wait_serving(c, name, timeout):
    return conftest_wait_serving(c.tcp, name, timeout, c.logtext)


def test_standby_answers_not_leader(two, pg_db):
    a, b = start_pair(two)
    h = b.health()
    assert h["role"] == "controller" and h["leader"] is False and h["leader_url"] == a.url
    ha = a.health()
    assert ha["leader"] is True and ha["leader_url"] == a.url and ha["epoch"] >= 1
    for method, path, body in (("GET", "/v1/vms", None), ("POST", "/v1/alert-rules", rule("x")),
                               ("GET", "/v1/version", None)):
        st, r = b.tcp(method, path, body)
        assert st == 503, (path, st, r)
        assert r["error"]["code"] == "not_leader" and r["error"]["leader"] == a.url
    # the standby wrote nothing, and still serves its health without a token
    assert rules(a) == []
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=5)
    c.request("GET", "/v1/health")
    assert c.getresponse().status == 200
    # the CLI follows: the standby first, or the standby alone
    add_rule_cli([b.url, a.url], "r1")
    add_rule_cli([b.url], "r2")
    assert rules(a) == ["r1", "r2"]
    assert psql(pg_db, "SELECT epoch FROM leader") == str(ha["epoch"])


def test_kill9_leader_standby_takes_over(two, pg_db):
    a, b = start_pair(two)
    add_rule_cli([a.url, b.url], "before")
    epoch = a.health()["epoch"]
    a.kill9()
    dt = wait_serving(b, "after", 10)
    print(f"\nkill -9 of the leader -> the standby serving writes: {dt:.2f} s")
    assert dt < 10
    h = b.health()
    assert h["leader"] and h["epoch"] == epoch + 1 and h["leader_url"] == b.url
    add_rule_cli([a.url, b.url], "cli")  # the dead one listed first
    assert rules(b) == ["after", "before", "cli"]
    # the old one, restarted, stands by behind the new leader
    a.start()
    wait_for(lambda: a.health()["leader_url"] == b.url, 10, what="a to follow b")
    assert a.health()["leader"] is False
    st, r = a.tcp("POST", "/v1/alert-rules", rule("via-a"))
    assert st == 503 and r["error"]["leader"] == b.url


def test_hung_leader_is_fenced_and_steps_down(two, pg_db):
    a, b = start_pair(two)
    epoch = a.health()["epoch"]
    os.kill(a.proc.pid, signal.SIGSTOP)  # its sessions linger, like a cut network
    try:
        dt = wait_serving(b, "after-hang", 10)
        print(f"\nSIGSTOP of the leader -> the standby serving writes: {dt:.2f} s")
        assert dt < 10
        assert b.health()["epoch"] == epoch + 1
        # the CLI listing the hung one first still gets through
        t0 = time.monotonic()
        add_rule_cli([a.url, b.url], "cli-hang")
        print(f"CLI with the hung leader listed first: {time.monotonic() - t0:.2f} s")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # continued, it finds its lease over: no write of its lands, it exits 75
    try:
        st, r = a.tcp("POST", "/v1/alert-rules", rule("late"), timeout=5)
        assert st == 503, (st, r)
    except (OSError, http.client.HTTPException):
        pass  # gone already
    a.proc.wait(timeout=10)
    assert a.proc.returncode == 75, a.logtext()
    assert "stepping down" in a.logtext()
    assert rules(b) == ["after-hang", "cli-hang"]
    assert psql(pg_db, "SELECT epoch FROM leader") == str(epoch + 1)


def test_second_all_in_one_on_the_database_refused(pg_db):
    """The all-in-one on PostgreSQL takes the lease too: a second one on the
    same database refuses to start, and takes over once the first is gone."""
    dirs = [tempfile.mkdtemp(prefix="yun-e2e-ld-", dir="/tmp") for _ in range(2)]
    first = Yund(dirs[0], ["--store", pg_db])
    try:
        first.start()
        assert first.request("GET", "/v1/health")[1]["leader"] is True
        p = subprocess.run([YUND, "-s", dirs[1], "--store", pg_db,
                            "--set", "leader_lease_ms=1000"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p.stderr
        assert "another yund leads this PostgreSQL database" in p.stderr
        epoch = psql(pg_db, "SELECT epoch FROM leader")
        first.stop()  # releases: the next one leads at once
        second = Yund(dirs[1], ["--store", pg_db]).start()
        try:
            assert second.request("GET", "/v1/health")[1]["leader"] is True
            assert psql(pg_db, "SELECT epoch FROM leader") == str(int(epoch) + 1)
        finally:
            second.stop()
    finally:
        first.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

