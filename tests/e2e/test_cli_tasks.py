"""The CLI's side of tasks, against a stand-in for yund that speaks exactly
the tasks contract (202 {"task": TASK}, GET /v1/tasks[/ID[?wait=S]], POST
/v1/tasks/ID/cancel): a command waits for its task and prints what it printed
before tasks, shows one updating progress line on a terminal, --no-wait
prints the task id, a failed task exits 1 with its message, and `yun task`
lists, shows, waits for and cancels by id prefix. (test_cli_table.py runs the
same commands against the real yund once it serves /v1/tasks.)"""
import http.server
import json
import os
import pty
import re
import socketserver
import subprocess
import threading
import urllib.parse

import pytest

from conftest import YUN

GIB = 1 << 30


class FakeTasks:
    def __init__(self):
        self.tasks = {}
        self.n = 0
        self.lock = threading.Lock()

    def new(self, kind, name, fail=None, steps=4, result=None):
        with self.lock:
            self.n += 1
            tid = f"{self.n:08x}-1111-4222-8333-444455556666"
            self.tasks[tid] = dict(
                id=tid, kind=kind, object=dict(type="volume", id="v-" + name, name=name),
                state="queued", created_at=1, started_at=None, finished_at=None,
                cancellable=True, _steps=steps, _fail=fail, _result=result)
            return tid

    def public(self, t):
        return {k: v for k, v in t.items() if not k.startswith("_")}

    def advance(self, tid):
        """One long poll's worth of progress."""
        with self.lock:
            t = self.tasks[tid]
            if t["state"] in ("succeeded", "failed", "cancelled"):
                return self.public(t)
            done = t.get("progress", {}).get("done", 0) + 10 * GIB // t["_steps"]
            t["state"] = "running"
            t["progress"] = dict(done=min(done, 10 * GIB), total=10 * GIB, unit="bytes")
            if done >= 10 * GIB:
                if t["_fail"]:
                    t["state"] = "failed"
                    t["error"] = dict(code="no_space", message=t["_fail"])
                else:
                    t["state"] = "succeeded"
                    t["result"] = t["_result"]
            return self.public(t)


def serve(sock_path, fake):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def address_string(self):
            return "unix"

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            u = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path == "/v1/tasks":
                with fake.lock:
                    ts = [fake.public(t) for t in reversed(list(fake.tasks.values()))]
                if "state" in q:
                    ts = [t for t in ts if t["state"] == q["state"][0]]
                return self.reply(200, {"tasks": ts})
            m = re.fullmatch(r"/v1/tasks/([^/]+)", u.path)
            if m and m.group(1) in fake.tasks:
                if "wait" in q:
                    return self.reply(200, fake.advance(m.group(1)))
                return self.reply(200, fake.public(fake.tasks[m.group(1)]))
            self.reply(404, {"error": {"code": "not_found", "message": "no such thing"}})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            m = re.fullmatch(r"/v1/volumes/([^/]+)/actions/clone", self.path)
            if m:
                fail = "no space left on the pool" if m.group(1) == "bad" else None
                tid = fake.new("volume.clone", body["name"], fail=fail,
                               result=dict(name=body["name"], format="qcow2"))
                return self.reply(202, {"task": fake.public(fake.tasks[tid])})
            m = re.fullmatch(r"/v1/tasks/([^/]+)/cancel", self.path)
            if m and m.group(1) in fake.tasks:
                t = fake.tasks[m.group(1)]
                if t["state"] in ("succeeded", "failed", "cancelled"):
                    return self.reply(409, {"error": {"code": "conflict",
                                                      "message": "task is already finished"}})
                t["state"] = "cancelled"
                return self.reply(202, fake.public(t))
            self.reply(404, {"error": {"code": "not_found", "message": "no such thing"}})

    class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    srv = S(sock_path, H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def fake(tmp_path):
    f = FakeTasks()
    f.sock = str(tmp_path / "fake.sock")
    srv = serve(f.sock, f)
    yield f
    srv.shutdown()
    srv.server_close()


def yun(f, *args):
    return subprocess.run([YUN, "--socket", f.sock, *args], capture_output=True, text=True,
                          timeout=60)


def test_command_waits_for_its_task(fake):
    p = yun(fake, "volume", "clone", "base", "c1", "--full")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "volume c1 cloned\n"
    assert p.stderr == ""  # no terminal: no progress line
    t = list(fake.tasks.values())[0]
    assert t["state"] == "succeeded"
    # -o json prints the task's result: the volume
    p = yun(fake, "-o", "json", "volume", "clone", "base", "c2")
    assert json.loads(p.stdout) == {"name": "c2", "format": "qcow2"}


def test_no_wait_prints_the_task_id(fake):
    p = yun(fake, "volume", "clone", "base", "c3", "--no-wait")
    assert p.returncode == 0
    tid = p.stdout.strip()
    assert fake.tasks[tid]["state"] == "queued"  # nobody waited
    p = yun(fake, "task", "wait", tid[:8])
    assert p.returncode == 0, p.stderr
    assert p.stdout == "clone c3  succeeded  10 GiB / 10 GiB\n"


def test_failed_task_exits_1_with_its_message(fake):
    p = yun(fake, "volume", "clone", "bad", "c4")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == "yun: no space left on the pool\n"
    tid = list(fake.tasks)[-1]
    p = yun(fake, "task", "wait", tid)
    assert p.returncode == 1 and "failed" in p.stdout
    assert p.stderr == "yun: no space left on the pool\n"


def test_progress_line_on_a_terminal(fake):
    master, slave = pty.openpty()
    try:
        p = subprocess.run([YUN, "--socket", fake.sock, "volume", "clone", "base", "c5"],
                           stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60)
        os.close(slave)
        slave = None
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0 and p.stdout == "volume c5 cloned\n"
    text = err.decode()
    # one line rewritten in place (\r + erase), cleared at the end
    frames = [f for f in text.split("\r\x1b[K") if f]
    assert frames[:3] == ["clone c5  25%  2.5 GiB / 10 GiB", "clone c5  50%  5 GiB / 10 GiB",
                          "clone c5  75%  7.5 GiB / 10 GiB"], frames
    assert text.endswith("\r\x1b[K")


def test_task_list_show_cancel_by_prefix(fake):
    a = fake.new("volume.export", "exp1")
    b = fake.new("volume.compact", "cmp1")
    fake.advance(b)
    p = yun(fake, "task", "list")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "KIND", "OBJECT", "STATE", "PROGRESS", "AGE"]
    assert lines[1].split()[:5] == [b[:8], "volume.compact", "cmp1", "running", "25%"]
    assert lines[2].split()[:5] == [a[:8], "volume.export", "exp1", "queued", "-"]
    p = yun(fake, "-o", "json", "task", "show", a[:8])
    assert json.loads(p.stdout)["id"] == a
    p = yun(fake, "task", "show", "0000000")  # both ids start so
    assert p.returncode == 1 and "2 tasks" in p.stderr
    p = yun(fake, "task", "show", "ffff")
    assert p.returncode == 1 and p.stderr.startswith("yun: no task")
    p = yun(fake, "task", "cancel", a[:8])
    assert p.returncode == 0 and fake.tasks[a]["state"] == "cancelled"
    p = yun(fake, "task", "wait", a)
    assert p.returncode == 1 and "cancelled" in p.stdout and p.stderr.startswith("yun: ")
    p = yun(fake, "task", "cancel", a)  # already finished: yund says 409
    assert p.returncode == 1 and "already finished" in p.stderr
