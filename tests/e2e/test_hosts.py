"""Hosts of a cluster, with real processes on 127.0.0.1: a controller yund
(--role controller, SQLite) and agent yunds (--role agent, own state
directories) that join it with the join token and heartbeat it. Listing,
maintenance and activate, bad joins (wrong token 401, a duplicate name 409,
impossible facts 400), a kill -9 of an agent turning its host down after
host_dead_after, its restart bringing it back up with the same id, removal
and re-join, an agent pointed at something that is not a controller, and
(on PostgreSQL) an agent following the leader and failing over with it."""
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import YUND, Yund, _cleanup, wait_for

TOKEN = "join-token-for-the-hosts-test-0123"
API_TOKEN = "api-token-for-the-hosts-test-0123"
DEAD_AFTER = 1500
HEARTBEAT = 250
# the cluster's one image library (docs/cluster.md): every daemon of a test names it
IMAGES = f"/tmp/yun-e2e-hosts-images-{os.getpid()}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Agent:
    """An agent yund: no API socket, so it is watched through its log and the
    controller's view of it."""

    def __init__(self, name, join_url, token=TOKEN, extra=()):
        self.dir = tempfile.mkdtemp(prefix="yun-e2e-ag-", dir="/tmp")
        self.name = name
        self.port = free_port()
        self.tokf = os.path.join(self.dir, "join.token")
        with open(self.tokf, "w") as f:
            f.write(token + "\n")
        self.args = [YUND, "-s", self.dir, "--role", "agent", "--join", join_url,
                     "--token-file", self.tokf, "--set", f"agent_listen=127.0.0.1:{self.port}",
                     "--set", f"host_name={name}", "--set", f"heartbeat_ms={HEARTBEAT}",
                     "--set", f"images_dir={IMAGES}", *extra]
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "test-yund.log"), "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
        return self

    def logtext(self):
        with open(os.path.join(self.dir, "test-yund.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            log = self.logtext()
            for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert bad not in log, log
            assert self.proc.returncode == 0, (self.proc.returncode, log[-3000:])

    def cluster_json(self):
        # written (temporary file, rename) when the join's answer is in: the
        # controller may show the host up a moment before
        path = os.path.join(self.dir, "cluster.json")
        wait_for(lambda: os.path.exists(path), 10, what="the agent's cluster.json")
        with open(path) as f:
            return json.load(f)


@pytest.fixture(scope="module", autouse=True)
def images_library():
    """The library every daemon of this file names; yund makes it, the file removes it."""
    yield IMAGES
    shutil.rmtree(IMAGES, ignore_errors=True)


@pytest.fixture
def controller(state_dir):
    tok = os.path.join(state_dir, "join.token")
    api = os.path.join(state_dir, "api.token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    with open(api, "w") as f:
        f.write(API_TOKEN + "\n")
    port = free_port()
    y = Yund(state_dir, ["--role", "controller", "--set", f"listen=127.0.0.1:{port}",
                         "--set", f"token_file={api}", "--set", f"join_token_file={tok}",
                         "--set", f"host_dead_after={DEAD_AFTER}",
                         "--set", f"heartbeat_ms={HEARTBEAT}",
                         "--set", f"images_dir={IMAGES}"]).start()
    y.url = f"http://127.0.0.1:{port}"
    y.port = port
    yield y
    y.stop()


@pytest.fixture
def agents():
    made = []

    def make(*a, **kw):
        ag = Agent(*a, **kw)
        made.append(ag)
        return ag
    yield make
    for ag in made:
        try:
            ag.stop()
        finally:
            _cleanup(ag.dir)


def tcp(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def host(y, name):
    st, h = y.request("GET", f"/v1/hosts/{name}")
    return h if st == 200 else None


def wait_state(y, name, state, timeout=15):
    return wait_for(lambda: (h := host(y, name)) and h["state"] == state and h, timeout,
                    what=f"host {name} {state}")


def facts(**over):
    b = {"token": TOKEN, "protocol": 1, "name": "intruder", "address": "127.0.0.1",
         "agent_url": "http://127.0.0.1:9", "run": "r1", "cpus": 2, "memory": 1 << 30,
         "accel": "tcg", "vms_dir": "/tmp/x/vms", "images_dir": IMAGES}
    b.update(over)
    return b


def test_join_list_maintenance_and_bad_joins(controller, agents):
    y = controller
    a = agents("node-a", y.url, extra=("--set", "host_labels=gpu=1,zone=a")).start()
    h = wait_state(y, "node-a", "up")
    assert h["cpus"] >= 1 and h["memory"] > 0 and h["labels"] == {"gpu": "1", "zone": "a"}
    assert h["agent_url"] == f"http://127.0.0.1:{a.port}" and h["vms"] == 0
    assert h["lease_until"] > 0 and not h["local"]
    cj = a.cluster_json()
    assert cj["host_id"] == h["id"] and len(cj["credential"]) == 64
    assert stat.S_IMODE(os.stat(os.path.join(a.dir, "cluster.json")).st_mode) == 0o600
    # the agent API answers the credential, and only it
    st, r = tcp(a.port, "GET", "/agent/v1/health",
                headers={"Authorization": "Bearer " + cj["credential"]})
    assert st == 200 and r["host_id"] == h["id"], r
    assert tcp(a.port, "GET", "/agent/v1/health")[0] == 401

    out = y.yun("host", "list").stdout
    assert "node-a" in out and "up" in out and "gpu=1" in out, out
    y.yun("host", "maintenance", "node-a")
    assert host(y, "node-a")["state"] == "maintenance"
    time.sleep(3 * HEARTBEAT / 1000)  # heartbeats keep it in maintenance
    assert host(y, "node-a")["state"] == "maintenance"
    assert "maintenance" in y.yun("host", "show", "node-a").stdout
    y.yun("host", "activate", "node-a")
    assert host(y, "node-a")["state"] == "up"
    assert y.yun("host", "show", "nope", check=False).returncode == 1

    before = y.request("GET", "/v1/hosts")[1]["hosts"]
    # a wrong token: 401, over TCP without the API token (a public route)
    st, r = tcp(y.port, "POST", "/v1/cluster/join", facts(token="wrong-token-0123456789"))
    assert st == 401 and r["error"]["code"] == "unauthorized", r
    # a name another host holds: 409
    st, r = tcp(y.port, "POST", "/v1/cluster/join", facts(name="node-a"))
    assert st == 409 and "node-a" in r["error"]["message"], r
    # impossible facts: 400 naming the field
    for bad, field in (({"cpus": 0}, "cpus"), ({"memory": -1}, "memory"),
                       ({"name": "Bad_Name"}, "name"), ({"agent_url": "ftp://x"}, "agent_url"),
                       ({"protocol": 2}, "protocol")):
        st, r = tcp(y.port, "POST", "/v1/cluster/join", facts(**bad))
        assert st == 400 and field in r["error"]["message"], (bad, st, r)
    # a heartbeat with a wrong credential, or for an unknown host: 401
    hb = {"run": "x", "cpu_load": 0.1, "mem_used": 1}
    st, r = tcp(y.port, "POST", "/v1/cluster/heartbeat", hb,
                {"X-Yun-Host": h["id"], "Authorization": "Bearer " + "0" * 64})
    assert st == 401, r
    st, r = tcp(y.port, "POST", "/v1/cluster/heartbeat", hb,
                {"X-Yun-Host": "no-such-host", "Authorization": "Bearer " + cj["credential"]})
    assert st == 401, r
    # nothing changed
    after = y.request("GET", "/v1/hosts")[1]["hosts"]
    assert [x["name"] for x in after] == [x["name"] for x in before] == ["node-a"]
    assert "wrong join token" in y.logtext(10**6)


def test_agent_kill9_down_then_up_and_remove_rejoin(controller, agents):
    y = controller
    a = agents("node-b", y.url).start()
    h = wait_state(y, "node-b", "up")
    y.yun("host", "maintenance", "node-b")
    t0 = time.monotonic()
    a.kill9()
    wait_state(y, "node-b", "down", timeout=DEAD_AFTER / 1000 + 5)
    took = time.monotonic() - t0
    assert took >= DEAD_AFTER / 1000 - 0.5, took  # not before its lease lapsed
    assert any(e["action"] == "down" for e in y.events("node-b"))
    assert host(y, "node-b")["maintenance"]
    # restarted: the same host id (cluster.json), maintenance kept
    a.start()
    h2 = wait_state(y, "node-b", "maintenance")
    assert h2["id"] == h["id"]
    assert any(e["action"] == "up" for e in y.events("node-b"))
    y.yun("host", "activate", "node-b")
    wait_state(y, "node-b", "up")
    # removed while its agent runs: its next heartbeat is told 401 and it
    # joins again, with its id
    y.yun("host", "remove", "node-b")
    h3 = wait_state(y, "node-b", "up", timeout=10)
    assert h3["id"] == h["id"]
    assert "joining again" in a.logtext()


def test_two_agents_and_not_a_controller(controller, agents):
    y = controller
    agents("node-c", y.url).start()
    agents("node-d", y.url).start()
    wait_state(y, "node-c", "up")
    wait_state(y, "node-d", "up")
    names = [x["name"] for x in y.request("GET", "/v1/hosts")[1]["hosts"]]
    assert names == ["node-c", "node-d"]

    # something that answers HTTP but is no yun controller
    class NotYun(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), NotYun)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        bad = agents("node-e", f"http://127.0.0.1:{srv.server_address[1]}").start()
        wait_for(lambda: "not a yun controller" in bad.logtext(), 15,
                 what="the agent to say it is not a controller")
        assert bad.proc.poll() is None  # it keeps retrying
        assert host(y, "node-e") is None
    finally:
        srv.shutdown()


PG_URL = os.environ.get("YUN_TEST_PG_URL", "")


@pytest.mark.skipif(not PG_URL, reason="YUN_TEST_PG_URL is not set")
def test_agent_follows_the_leader_and_fails_over(agents):
    """Two controllers on one PostgreSQL: the agent, told the standby first,
    follows its not_leader to the leader; when the leader is killed, its
    heartbeats go to the other URL, which leads by then: the host stays."""
    from test_leader import Controller
    from test_store_pg import psql, with_db
    name = f"yun_e2e_hosts_{os.getpid()}"
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(PG_URL, f"CREATE DATABASE {name}")
    db = with_db(PG_URL, name)
    dirs = [tempfile.mkdtemp(prefix="yun-e2e-hc-", dir="/tmp") for _ in range(2)]
    cs = []
    try:
        a = Controller(dirs[0], db, free_port())
        a.extra_args += ["--set", "host_dead_after=3000", "--set", f"heartbeat_ms={HEARTBEAT}",
                         "--set", f"images_dir={IMAGES}"]
        a.start()
        wait_for(lambda: a.leads(), 15, what="the first controller to lead")
        b = Controller(dirs[1], db, free_port())
        b.extra_args += ["--set", "host_dead_after=3000", "--set", f"heartbeat_ms={HEARTBEAT}",
                         "--set", f"images_dir={IMAGES}"]
        b.start()
        cs = [a, b]
        ag = agents("node-f", f"{b.url},{a.url}", token="join-token-0123456789abcdef").start()
        h = wait_state(a, "node-f", "up")
        wait_for(lambda: "following the leader" in ag.logtext(), 10, what="not_leader followed")
        a.kill9()
        wait_for(lambda: b.leads(), 20, what="the standby to take over")
        h2 = wait_state(b, "node-f", "up", timeout=10)
        assert h2["id"] == h["id"]
        t = time.monotonic()
        while time.monotonic() - t < 4:  # longer than host_dead_after: heartbeats reach b
            assert host(b, "node-f")["state"] == "up"
            time.sleep(0.5)
    finally:
        for c in cs:
            if c.proc and c.proc.poll() is None:
                c.stop()
        for d in dirs:
            _cleanup(d)
        psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
