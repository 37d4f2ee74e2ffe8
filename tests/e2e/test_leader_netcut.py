"""The leader's network cut, for real (docs/cluster.md "Leader"): PostgreSQL
of its own in network namespace `db`, listening on TCP there
(scripts/pg-test-server.sh with PG_LISTEN/PG_NETNS); two controllers in
namespaces `c1` and `c2`, each reaching it over TCP through its veth link
to the fabric's bridge (tests/e2e/cluster/netns.py). The cut is `ip link
set DEV down` on the leader's link: its database sessions linger at the
server, so the standby must find the lease lapsed, end them and take over.

Each round: a write through the leader; the leader's link cut; a write sent
to the cut leader from its own namespace (it must never land); the database
refusing a write under the deposed epoch (the fence); the standby serving writes (measured from
the cut, < 10 s); the old leader, still cut off, steps down (exit 75: no
store call holds its loop for TCP's minutes); the link restored, it is
started again (as a supervisor would) and is a standby naming the new
leader; a host's agent (joined to both) is up on the new leader. The rounds
alternate the roles. At the end every write is there
once, the cut leaders' are not, and the epoch counted one election a round.

Needs root (namespaces) and PostgreSQL's server binaries; skipped without."""
import glob
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

import pytest

from cluster import netns
from cluster.harness import Daemon, ns_request
from conftest import ROOT, wait_for
from conftest import alert_rule as rule
from conftest import wait_serving as conftest_wait_serving

# the figure in docs/benchmarks.md: YUN_CUT_LEASE_MS=5000 YUN_CUT_ROUNDS=5 (the defaults')
LEASE_MS = int(os.environ.get("YUN_CUT_LEASE_MS", "3000"))
ROUNDS = int(os.environ.get("YUN_CUT_ROUNDS", "3"))
PORT = 7780
HAVE_PG = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
pytestmark = pytest.mark.skipif(os.getuid() != 0 or not HAVE_PG,
                                reason="needs root and PostgreSQL's server binaries")


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


class Ctl(Daemon):
    def __init__(self, run, fabric, name, store):
        self.addr = fabric.add_host(name)
        self.url = f"http://{self.addr}:{PORT}"
        sd = os.path.join(run.run_dir, name)
        super().__init__(run, fabric.ns(name), name, sd, [
            "--role", "controller", "--store", store, "-s", sd,
            "-o", f"listen={self.addr}:{PORT}", "-o", f"token_file={run.token_file}",
            "-o", f"join_token_file={run.join_file}", "-o", f"advertise_url={self.url}",
            "-o", f"leader_lease_ms={LEASE_MS}", "-o", "stop_timeout=15",
            "-o", f"images_dir={run.images_dir}"])
        self.token = run.token

    def request(self, method, path, body=None, timeout=10):
        status, payload = ns_request(self.ns, self.addr, PORT, self.token, method, path, body,
                                     timeout)
        return status, (json.loads(payload) if payload else None)

    def health(self):
        try:
            st, h = self.request("GET", "/v1/health", timeout=3)
        except (OSError, http.client.HTTPException):
            return {}
        return h if st == 200 else {}

    def start(self):
        self.spawn()
        wait_for(lambda: self.check_alive() or self.health(), 30,
                 what=f"{self.name} to answer /v1/health")
        return self


class HostAgent(Daemon):
    """A host's agent (no VM needed) joining both controllers."""

    def __init__(self, run, fabric, name, ctls):
        self.addr = fabric.add_host(name)
        sd = os.path.join(run.run_dir, name)
        super().__init__(run, fabric.ns(name), name, sd, [
            "--role", "agent", "-s", sd, "--join", ",".join(c.url for c in ctls),
            "--token-file", run.join_file, "-o", f"agent_listen={self.addr}:7781",
            "-o", f"host_name={name}", "-o", "heartbeat_ms=500", "-o", "stop_timeout=15",
            "-o", f"images_dir={run.images_dir}"])


def host_row(c, name):
    try:
        st, r = c.request("GET", "/v1/hosts", timeout=3)
    except (OSError, http.client.HTTPException):
        return {}
    if st != 200:
        return {}
    return next((h for h in r["hosts"] if h["name"] == name), {})


def host_state(c, name):
    return host_row(c, name).get("state")


def _reaches(ns, addr):
    try:
        netns.connect_in(ns, addr, 5432, 1).close()
        return True
    except OSError:
        return False


def wait_serving(c, name, timeout):
    return conftest_wait_serving(c.request, name, timeout, c.logtext)


@pytest.fixture
def netcut():
    """The fabric, the database server in `db`, and two controllers (not
    started) on a database of its own, reached over TCP."""
    class Run:
        pass
    run = Run()
    run.run_dir = tempfile.mkdtemp(prefix=f"yc{os.getpid()}-cut-", dir="/tmp")
    os.chmod(run.run_dir, 0o755)
    run.token = "cut-token-" + os.urandom(8).hex()
    run.token_file = os.path.join(run.run_dir, "api.token")
    run.join_file = os.path.join(run.run_dir, "join.token")
    run.images_dir = os.path.join(run.run_dir, "images")
    for path, text in ((run.token_file, run.token), (run.join_file, "join-" + os.urandom(12).hex())):
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)
    fabric = netns.Fabric()
    pgdir = os.path.join(run.run_dir, "pg")
    script = os.path.join(ROOT, "scripts", "pg-test-server.sh")
    ctls = []
    try:
        db_addr = fabric.add_host("db")
        p = subprocess.run([script, "start", pgdir], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PG_LISTEN=db_addr, PG_NETNS=fabric.ns("db")))
        assert p.returncode == 0, p.stderr
        tcp_url = p.stdout.strip()
        assert tcp_url == f"postgresql://postgres@{db_addr}:5432/postgres", tcp_url
        # set-up over the server's unix socket (not the fabric)
        local = f"postgresql:///postgres?host={pgdir.replace('/', '%2F')}&user=postgres"
        psql(local, "CREATE DATABASE yun_cut")
        store = tcp_url.rsplit("/", 1)[0] + "/yun_cut"
        ctls = [Ctl(run, fabric, n, store) for n in ("c1", "c2")]
        run.agent = HostAgent(run, fabric, "h1", ctls)
        run.fabric, run.ctls, run.local = fabric, ctls, local.replace("/postgres?", "/yun_cut?")
        run.db_addr = db_addr
        yield run
    finally:
        problems = [d.stop() for d in ([run.agent] if getattr(run, "agent", None) else []) + ctls]
        subprocess.run([script, "stop", pgdir], capture_output=True, timeout=60)
        fabric.destroy()
        shutil.rmtree(run.run_dir, ignore_errors=True)
    problems = [x for x in problems if x]
    assert not problems, "\n".join(problems)


def test_leader_link_cut_standby_takes_over(netcut):
    leader, standby = netcut.ctls
    fab = netcut.fabric
    leader.start()
    wait_for(lambda: leader.health().get("leader"), 20, what="c1 to lead")
    standby.start()
    wait_for(lambda: standby.health().get("leader_url") == leader.url, 20,
             what="c2 to know the leader")
    agent = netcut.agent.spawn()
    wait_for(lambda: agent.check_alive() or host_state(leader, "h1") == "up", 30,
             what="host h1 to be up")
    epoch0 = leader.health()["epoch"]
    took, expected = [], []
    for i in range(ROUNDS):
        st, r = leader.request("POST", "/v1/alert-rules", rule(f"r{i}-before"))
        assert st == 201, (st, r)
        expected.append(f"r{i}-before")
        epoch = leader.health()["epoch"]

        fab.cut(leader.name)
        t0 = time.monotonic()
        with pytest.raises(OSError):  # the cut is real: the database is out of its reach
            netns.connect_in(leader.ns, netcut.db_addr, 5432, 1).close()
        # a write sent to the cut leader, from its own side of the cut
        late = {}

        def send():
            try:
                late["st"] = leader.request("POST", "/v1/alert-rules", rule(f"r{i}-during"),
                                            timeout=120)
            except (OSError, http.client.HTTPException) as e:
                late["err"] = repr(e)
        th = threading.Thread(target=send, daemon=True)
        th.start()
        dt = wait_serving(standby, f"r{i}-after", 15)
        took.append(time.monotonic() - t0)
        expected.append(f"r{i}-after")
        print(f"\nround {i + 1}: link of {leader.name} cut -> {standby.name} serving writes: "
              f"{took[-1]:.2f} s")
        assert dt < 10, f"the standby took {dt:.1f} s"
        assert standby.health()["epoch"] == epoch + 1
        # the host follows the new leader: its heartbeats renew its lease there
        lease0 = host_row(standby, "h1")["lease_until"]
        wait_for(lambda: agent.check_alive() or (lambda h: h.get("state") == "up" and
                                                 h["lease_until"] > lease0)(host_row(standby, "h1")),
                 20, interval=0.1, what=f"host h1 heartbeating {standby.name}")
        # the fence: a session writing under the deposed epoch is refused by the database
        fenced = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", netcut.local, "-c",
             f"SELECT set_config('yun.epoch', '{epoch}', false); "
             "DELETE FROM alert_rules WHERE false"], capture_output=True, text=True, timeout=30)
        assert fenced.returncode != 0 and f"epoch {epoch} is fenced off" in fenced.stderr, fenced

        # still cut off, the old leader finds its lease over and steps down: no store
        # call holds its loop past the store connection's TCP timeouts (db_pg.c)
        try:
            leader.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{leader.name}, cut off, did not step down:\n"
                                 f"{leader.logtext()}")
        print(f"  {leader.name} stepped down {time.monotonic() - t0:.1f} s after the cut; "
              f"the write sent to it: {late}")
        log = leader.logtext(tail=10**6)
        assert leader.proc.returncode == 75, log[-3000:]
        assert "stepping down" in log, log[-3000:]
        th.join(30)
        assert not th.is_alive()
        fab.restore(leader.name)
        wait_for(lambda: _reaches(leader.ns, netcut.db_addr), 20, interval=0.1,
                 what=f"{leader.name} to reach the database again")
        assert "err" in late or not 200 <= late["st"][0] < 300, late
        # started again (as a supervisor would): a standby naming the new leader
        leader.start()
        wait_for(lambda: leader.health().get("leader_url") == standby.url, 20,
                 what=f"{leader.name} to come back as a standby")
        assert not leader.health()["leader"]
        st, e = leader.request("POST", "/v1/alert-rules", rule(f"r{i}-via-standby"))
        assert st == 503 and e["error"]["code"] == "not_leader", (st, e)
        assert e["error"]["leader"] == standby.url, e
        leader, standby = standby, leader

    st, r = leader.request("GET", "/v1/alert-rules")
    assert st == 200, r
    names = [x["name"] for x in r["rules"]]
    assert sorted(names) == sorted(expected), names  # each once; no cut leader's write
    assert psql(netcut.local, "SELECT epoch FROM leader") == str(epoch0 + ROUNDS)
    print(f"cut -> takeover over {ROUNDS} rounds: median {statistics.median(took):.2f} s, "
          f"max {max(took):.2f} s (lease {LEASE_MS} ms)")
