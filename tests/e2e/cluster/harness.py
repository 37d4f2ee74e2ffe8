"""harness.py - a real yun cluster on one machine for the cluster tests:
controllers and agents (`yund --role controller|agent`, docs/cluster.md),
each in a network namespace of its own (netns.py), the state of record in a
PostgreSQL database of its own (YUN_TEST_PG_URL's server, a unix socket under
/tmp that every namespace reaches), the CLI run inside a controller's
namespace, raw HTTP from this process through a socket made in that
namespace. Nothing is mocked.

It owns: starting, kill -9 and restarting any daemon; waiting for what the
API reports (short polls, bounded; never a fixed sleep); the invariants on
every host (every QEMU has exactly one row, on its host; every running row
has exactly one QEMU on its host; no VM directory without a row); and
teardown, which fails the test that stopped a daemon when a sanitizer
reported anything at its exit (the report in the failure). YUN_KEEP=1 keeps
the run directory (logs, state dirs) and the database.
"""
import http.client
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from . import netns

_E2E = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("yun_e2e_common", os.path.join(_E2E, "conftest.py"))
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

YUND, YUN, MARKER = common.YUND, common.YUN, common.MARKER
wait_for, pid_alive, qemu_pids_for = common.wait_for, common.pid_alive, common.qemu_pids_for
PG_URL = os.environ.get("YUN_TEST_PG_URL", "")
AGENT_PORT = 7781
# the image builders' cache (the Debian image is built once per machine)
IMAGE_CACHE = os.environ.get("YUN_IMAGE_CACHE",
                             os.path.join(os.path.dirname(common.ROOT), ".yun-image-cache"))
CTL_PORT = 7780
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")
LIVE = ("running", "paused", "starting", "stopping")
TRANSIENT = ("creating", "starting", "stopping", "deleting")


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def with_db(url, name):
    base, sep, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}{sep}{query}"


def uuid_of(pid):
    """The VM id of a QEMU (its -uuid argument); None once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    return argv[argv.index("-uuid") + 1] if "-uuid" in argv else None


class Daemon:
    """One yund in namespace ns. args: everything after the binary."""

    def __init__(self, cluster, ns, name, state_dir, args):
        self.cluster, self.ns, self.name, self.state_dir = cluster, ns, name, state_dir
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(cluster.run_dir, f"{name}.log")
        self._log_from = 0
        os.makedirs(state_dir, mode=0o700, exist_ok=True)

    def spawn(self, *extra):
        assert not self.running(), f"{self.name} is running"
        self._log_from = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, YUND] + self.args + list(extra),
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.logtext()}")

    def logtext(self, tail=4000):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace")[-tail:]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM; it must exit 0 with no sanitizer report. Returns the
        problem as text ("" when none) so teardown can stop every daemon
        before it fails."""
        if not self.running():
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return f"{self.name} did not stop within 30 s of SIGTERM:\n{self.logtext()}"
        log = self.logtext(tail=10**7)
        for bad in SANITIZER:
            if bad in log:
                i = log.index(bad)
                return f"{self.name}: sanitizer report at its stop:\n{log[max(0, i - 2000):i + 8000]}"
        if self.proc.returncode != 0:
            return f"{self.name} exited {self.proc.returncode} on SIGTERM:\n{log[-4000:]}"
        return ""

    def stop_checked(self):
        problem = self.stop()
        assert not problem, problem


class Controller(Daemon):
    def __init__(self, cluster, name, extra=()):
        # a controller added again (after remove_controller) keeps its namespace
        self.addr = cluster.fabric.hosts.get(name) or cluster.fabric.add_host(name)
        self.url = f"http://{self.addr}:{CTL_PORT}"
        sd = os.path.join(cluster.run_dir, name)
        self.base_extra = list(extra)
        super().__init__(cluster, cluster.fabric.ns(name), name, sd, [])

    def start(self, *extra):
        c = self.cluster
        self.args = ["--role", "controller", "--store", c.pg_url, "-s", self.state_dir,
                     "-o", f"listen={self.addr}:{CTL_PORT}", "-o", f"token_file={c.api_token_file}",
                     "-o", f"join_token_file={c.join_token_file}", "-o", f"advertise_url={self.url}",
                     "-o", f"heartbeat_ms={c.heartbeat_ms}", "-o", f"host_dead_after={c.dead_after_ms}",
                     "-o", f"leader_lease_ms={c.lease_ms}", "-o", "stop_timeout=15",
                     "-o", "reconcile_interval=2",
                     # one image library for the cluster (docs/cluster.md): shared storage
                     "-o", f"images_dir={c.images_dir}"] + self.base_extra
        self.spawn(*extra)
        wait_for(self._answers, 30, what=f"controller {self.name} to answer /healthz")
        return self

    def _answers(self):
        self.check_alive()
        try:
            return self.request("GET", "/healthz", timeout=2)[0] in (200, 503)
        except OSError:
            return False

    def request(self, method, path, body=None, timeout=60, headers=None):
        status, payload = ns_request(self.ns, self.addr, CTL_PORT, self.cluster.api_token, method,
                                     path, body, timeout, headers)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return status, parsed


class Agent(Daemon):
    """images_dir: a library of the host's own (images are copied to it);
    default: the cluster's shared one."""

    def __init__(self, cluster, name, labels="", images_dir=None):
        self.addr = cluster.fabric.add_host(name)
        self.labels = labels
        self.images_dir = images_dir or cluster.images_dir
        sd = os.path.join(cluster.run_dir, name)
        super().__init__(cluster, cluster.fabric.ns(name), name, sd, [])

    def start(self, *extra, wait_up=True):
        c = self.cluster
        self.args = ["--role", "agent", "-s", self.state_dir, "--join",
                     ",".join(x.url for x in c.controllers), "--token-file", c.join_token_file,
                     "-o", f"agent_listen={self.addr}:{AGENT_PORT}", "-o", f"host_name={self.name}",
                     "-o", f"heartbeat_ms={c.heartbeat_ms}", "-o", "stop_timeout=15",
                     "-o", "reconcile_interval=2", "-o", f"images_dir={self.images_dir}",
                     "-o", "ksm=off",  # the machine's KSM is not the tests' to drive
                     "-o", f"image_cache={IMAGE_CACHE}"]
        if self.labels:
            self.args += ["-o", f"host_labels={self.labels}"]
        self.spawn(*extra)
        # its agent API first: the host may still be "up" on the lease of the
        # agent that ran before, while this one is not listening yet
        wait_for(self._listening, 30, what=f"agent {self.name} to listen")
        if wait_up:
            c.wait_host(self.name, "up", 30, daemon=self)
        return self

    def _listening(self):
        self.check_alive()
        conn = _NsHTTP(self.ns, self.addr, AGENT_PORT, 2)
        try:
            conn.request("GET", "/agent/v1/health")
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def qemus(self):
        """{pid: vm id} of the QEMUs this host's agent runs."""
        return {p: uuid_of(p) for p in qemu_pids_for(self.state_dir) if pid_alive(p)}

    def vm_dirs(self):
        d = os.path.join(self.state_dir, "vms")
        return set(os.listdir(d)) if os.path.isdir(d) else set()


class _NsHTTP(http.client.HTTPConnection):
    """HTTP/1.1 to host:port as seen from inside namespace ns."""

    def __init__(self, ns, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.ns = ns

    def connect(self):
        self.sock = netns.connect_in(self.ns, self.host, self.port, self.timeout)


def ns_request(ns, addr, port, token, method, path, body=None, timeout=60, headers=None):
    """One HTTP request with a bearer token from inside namespace ns: (status, raw body)."""
    conn = _NsHTTP(ns, addr, port, timeout)
    h = {"Authorization": f"Bearer {token}"}
    h.update(headers or {})
    data = json.dumps(body) if body is not None else None
    if data is not None:
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Cluster:
    """controllers: the standbys after the first; agents: {name: labels}."""

    def __init__(self, agents, controllers=1, ctl_extra=(), heartbeat_ms=500, dead_after_ms=3000,
                 lease_ms=3000):
        assert PG_URL, "YUN_TEST_PG_URL is not set (scripts/pg-test-server.sh start DIR)"
        netns.sweep_dead()
        self.heartbeat_ms, self.dead_after_ms, self.lease_ms = heartbeat_ms, dead_after_ms, lease_ms
        # short (socket paths), and named by the run (yc<pid>-...) like its namespaces
        self.run_dir = tempfile.mkdtemp(prefix=f"yc{os.getpid()}-", dir="/tmp")
        os.chmod(self.run_dir, 0o755)
        # the cluster's image library, on storage every host sees (here: one filesystem)
        self.images_dir = os.path.join(self.run_dir, "images")
        self.fabric = netns.Fabric()
        self.db = f"yun_cluster_{os.getpid()}_{self.fabric.prefix.replace('-', '_')}"
        self.pg_url = with_db(PG_URL, self.db)
        self.controllers, self.agents, self.problems = [], {}, []
        self._closed = False
        try:
            psql(PG_URL, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            psql(PG_URL, f"CREATE DATABASE {self.db}")
            self.api_token = "api-token-" + os.urandom(12).hex()
            self.api_token_file = self._secret("api.token", self.api_token)
            self.join_token = "join-token-" + os.urandom(12).hex()
            self.join_token_file = self._secret("join.token", self.join_token)
            for i in range(controllers):
                self.controllers.append(Controller(self, f"c{i + 1}", ctl_extra))
            for name in agents:
                self.agents[name] = Agent(self, name, agents[name])
            for c in self.controllers:
                c.start()
            self.wait_leader()
            for a in self.agents.values():
                a.start(wait_up=False)
            for name in self.agents:
                self.wait_host(name, "up", 30, daemon=self.agents[name])
        except BaseException:
            self.close(check=False)
            raise

    def _secret(self, name, text):
        p = os.path.join(self.run_dir, name)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (text + "\n").encode())
        os.close(fd)
        return p

    # -- the API, through whichever controller leads --
    def leader(self):
        """The controller that answers writes (not 503 not_leader)."""
        for c in self.controllers:
            if not c.running():
                continue
            try:
                st, body = c.request("GET", "/v1/hosts", timeout=5)
            except OSError:
                continue
            if st != 503:
                return c
        return None

    def wait_leader(self, timeout=20):
        return wait_for(self.leader, timeout, interval=0.1, what="a leading controller")

    def api(self, method, path, body=None, timeout=60):
        """One request to the leader; a standby's 503 not_leader or a dead
        controller moves on to the next one (as the CLI does). With no
        leader, a standby's 503 not_leader is the answer."""
        last = None
        for c in sorted(self.controllers, key=lambda x: not x.running()):
            if not c.running():
                continue
            try:
                st, b = c.request(method, path, body, timeout=timeout)
            except OSError as e:
                last = e
                continue
            if st == 503 and isinstance(b, dict) and \
                    (b.get("error") or {}).get("code") == "not_leader":
                last = (st, b)
                continue
            return st, b
        if isinstance(last, tuple):
            return last  # every one a standby (an election under way): their 503
        raise AssertionError(f"no controller answered {method} {path}: {last}")

    def get(self, path):
        st, b = self.api("GET", path)
        assert st == 200, (path, st, b)
        return b

    def yun(self, *args, check=True, input=None, timeout=120, via=None):
        """The CLI inside a controller's namespace, --url naming every
        controller (it follows the leader)."""
        c = via or self.controllers[0]
        urls = ",".join(x.url for x in self.controllers) if via is None else c.url
        p = subprocess.run(["ip", "netns", "exec", c.ns, YUN, "--url", urls, "--token", self.api_token,
                            *args], capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"yun {' '.join(args)} -> {p.returncode}: {p.stderr}{p.stdout}")
        return p

    def yun_popen(self, *args):
        c = self.controllers[0]
        return subprocess.Popen(["ip", "netns", "exec", c.ns, YUN, "--url",
                                 ",".join(x.url for x in self.controllers), "--token", self.api_token,
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # -- what the controller reports --
    def hosts(self):
        """{name: host} from GET /v1/hosts."""
        b = self.get("/v1/hosts")
        return {h["name"]: h for h in (b["hosts"] if isinstance(b, dict) else b)}

    def host_state(self, name):
        h = self.hosts().get(name)
        return h and h.get("state")

    def wait_host(self, name, state, timeout=30, daemon=None):
        def ok():
            if daemon:
                daemon.check_alive()
            try:
                return self.host_state(name) == state
            except (OSError, AssertionError):
                return False
        return wait_for(ok, timeout, interval=0.1, what=f"host {name} to be {state}")

    def vms(self):
        return self.get("/v1/vms")["vms"]

    def vm(self, name):
        return self.get(f"/v1/vms/{name}")

    def vm_host(self, v, hosts=None):
        """The name of the host a VM row is on ("" when not placed)."""
        hid = v.get("host") or ""
        if v.get("host_name"):
            return v["host_name"]
        for h in (hosts or self.hosts()).values():
            if hid in (h.get("id"), h.get("name")):
                return h["name"]
        return hid

    def wait_vm(self, name, states, timeout=60):
        states = (states,) if isinstance(states, str) else tuple(states)

        def ok():
            st, v = self.api("GET", f"/v1/vms/{name}")
            return v if st == 200 and v["state"] in states else None
        return wait_for(ok, timeout, interval=0.1, what=f"vm {name} to be {'/'.join(states)}")

    def events(self, obj=None, after=0):
        q = f"?limit=1000&after={after}" + (f"&object={obj}" if obj else "")
        return self.get("/v1/events" + q)["events"]

    def wait_event(self, pred, obj=None, after=0, timeout=30, what="an event"):
        return wait_for(lambda: next((e for e in self.events(obj, after) if pred(e)), None),
                        timeout, interval=0.1, what=what)

    def console_log(self, name):
        return self.yun("vm", "logs", name).stdout

    def wait_marker(self, name, timeout=90):
        return wait_for(lambda: MARKER in self.console_log(name), timeout, interval=0.25,
                        what=f"{MARKER} on {name}'s console")

    def task_wait(self, reply, timeout=300):
        st, body = reply
        assert st == 202, reply
        tid = body["task"]["id"]
        deadline = time.monotonic() + timeout
        while True:
            t = self.get(f"/v1/tasks/{tid}?wait=10")
            if t["state"] in ("succeeded", "failed", "cancelled"):
                return t
            assert time.monotonic() < deadline, f"task {tid} still {t['state']}"

    def ensure_tiny(self):
        r = self.api("POST", "/v1/images/build", {"kind": "tiny"}, timeout=300)
        if r[0] == 202:
            t = self.task_wait(r)
            assert t["state"] == "succeeded", t
            r = self.api("POST", "/v1/images/build", {"kind": "tiny"})
        assert r[0] == 200, r
        return r[1]

    # -- invariants on every host --
    def check_invariants(self, settled=False):
        """Every QEMU on every host has exactly one row, and that row is on
        its host; every live row has exactly one QEMU, on its host, with the
        row's pid; no QEMU runs a VM on two hosts; every VM directory on a
        host has a row on that host. settled: nothing in flight, so no row is
        transient, every row's directory exists, no task is running."""
        hosts = self.hosts()
        vms = self.vms()
        rows = {v["id"]: v for v in vms}
        assert len(rows) == len(vms), "two rows with one id"
        where = {v["id"]: self.vm_host(v, hosts) for v in vms}
        seen = {}
        for name, ag in self.agents.items():
            qemus = ag.qemus()
            per_vm = {}
            for pid, vid in qemus.items():
                assert vid in rows, f"QEMU pid {pid} on {name} (vm {vid}) has no row"
                assert where[vid] == name, \
                    f"QEMU pid {pid} of {rows[vid]['name']} runs on {name}, its row says {where[vid]}"
                per_vm.setdefault(vid, []).append(pid)
                assert vid not in seen, f"vm {vid} has a QEMU on {seen[vid]} and on {name}"
            for vid in per_vm:
                seen[vid] = name
            assert all(len(p) == 1 for p in per_vm.values()), f"duplicate QEMUs on {name}: {per_vm}"
            mine = [v for v in vms if where[v["id"]] == name]
            for v in mine:
                if v["state"] in ("running", "paused") or (settled and v["state"] in LIVE):
                    assert v["id"] in per_vm, (
                        f"vm {v['name']} is {v['state']} on {name} (pid {v.get('pid')}) but has no "
                        f"QEMU there; its last events "
                        f"{[(e.get('action'), e.get('result'), e.get('message')) for e in self.events(v['name'])[-8:]]}")
                    assert per_vm[v["id"]] == [v["pid"]], (v["name"], v["pid"], per_vm[v["id"]])
                elif v["state"] in ("stopped", "crashed", "created"):
                    assert v["id"] not in per_vm, f"vm {v['name']} is {v['state']} but QEMU runs on {name}"
            dirs = ag.vm_dirs()
            ids = {v["id"] for v in mine}
            orphans = dirs - ids
            assert not orphans, f"VM directories on {name} without a row there: {orphans}"
            if settled:
                missing = {v["name"] for v in mine} - {rows[i]["name"] for i in dirs}
                assert not missing, f"rows on {name} without their directory: {missing}"
        ctl_qemus = [p for c in self.controllers for p in qemu_pids_for(c.state_dir)]
        assert not ctl_qemus, f"QEMUs under a controller's state dir: {ctl_qemus}"
        for v in vms:
            assert where[v["id"]] in self.agents or (not where[v["id"]] and v["state"] == "creating"), \
                f"vm {v['name']} is on an unknown host {where[v['id']]!r}"
        if settled:
            for v in vms:
                assert v["state"] not in TRANSIENT, v
            running = self.get("/v1/tasks?state=running")["tasks"]
            assert running == [], running
        return vms

    def settle(self, timeout=60):
        """Waits until the invariants hold settled (reconcile passes run on
        timers); raises the last failure when they never do."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.check_invariants(settled=True)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    # -- leaving it as found --
    def delete_all_vms(self):
        for v in self.vms():
            self.yun("vm", "delete", "--force", v["name"], check=False)
        wait_for(lambda: not self.vms(), 120, interval=0.2, what="every VM to be deleted")

    def restart_controllers(self, extra=()):
        """Every controller stopped (sanitizer-checked) and started again
        with extra settings (e.g. -o placement_policy=pack); the agents stay."""
        for c in self.controllers:
            c.stop_checked()
        for c in self.controllers:
            c.base_extra = list(extra)
            c.start()
        self.wait_leader()
        for name, a in self.agents.items():
            if a.running():
                self.wait_host(name, "up", 30, daemon=a)

    def add_controller(self, name):
        """Another controller (a standby while one leads) on the same
        database; the agents are restarted to --join every controller."""
        c = Controller(self, name, self.controllers[0].base_extra)
        self.controllers.append(c)
        c.start()
        self.restart_agents()
        return c

    def remove_controller(self, c):
        """Stops c (sanitizer-checked) and forgets it; another one leads."""
        c.stop_checked()
        self.controllers.remove(c)
        self.wait_leader(30)
        self.restart_agents()

    def restart_agents(self, **extra):
        """Every agent stopped (sanitizer-checked) and started again
        (extra: {name: [args]}), --join naming the current controllers."""
        for name, a in self.agents.items():
            a.stop_checked()
            a.start(*extra.get(name, ()), wait_up=False)
        for name, a in self.agents.items():
            self.wait_host(name, "up", 30, daemon=a)

    def close(self, check=True):
        """Stops everything; the sanitizer's complaints (if any) are raised
        once all is gone. check=False: stops without looking (setup failed)."""
        if self._closed:
            return
        self._closed = True
        for d in list(self.agents.values()) + self.controllers:
            if d.proc is None:
                continue
            problem = d.stop()
            if problem:
                self.problems.append(problem)
        keep = os.environ.get("YUN_KEEP")
        for d in list(self.agents.values()) + self.controllers:
            if not keep:
                common._cleanup(d.state_dir)
        self.fabric.destroy()
        if not keep:
            psql(PG_URL, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            print(f"\nYUN_KEEP: cluster run dir {self.run_dir}, database {self.pg_url}")
        if check and self.problems:
            raise AssertionError("\n\n".join(self.problems))
