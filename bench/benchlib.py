"""Helpers the bench scripts share: HTTP to yund over its Unix socket."""
import http.client
import json
import socket


class Conn(http.client.HTTPConnection):
    def __init__(self, path, timeout=600):
        super().__init__("yund", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(sock, method, path, body=None, raw=False, follow=True):
    """One request; returns (status, decoded JSON or raw bytes). A 202 with a
    task (a long operation) is followed until the task ends, as the CLI does:
    (200, its result) on success, (500, {"error": ...}) otherwise."""
    c = Conn(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    out = data if raw else (json.loads(data) if data else None)
    if follow and not raw and r.status == 202 and isinstance(out, dict) and "task" in out:
        tid = out["task"]["id"]
        while True:
            st, t = call(sock, "GET", f"/v1/tasks/{tid}?wait=30", follow=False)
            if st != 200 or t["state"] not in ("queued", "running"):
                break
        if st == 200 and t["state"] == "succeeded":
            return 200, t.get("result", {})
        return 500, {"error": t.get("error", {}) if isinstance(t, dict) else {}}
    return r.status, out


def teardown(proc, state, settle=0.5):
    """Stops yund (proc), kills any QEMU of the state dir, removes the dir."""
    import os
    import shutil
    import signal
    import subprocess
    import time
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    out = subprocess.run(["pgrep", "-f", state + "/vms/"], capture_output=True, text=True)
    for pid in out.stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    time.sleep(settle)
    shutil.rmtree(state, ignore_errors=True)


def start_yund(prefix, *settings):
    """Starts build/yund on a fresh state dir with `--set` settings; waits
    for its socket. Returns (process, state dir, socket path)."""
    import os
    import subprocess
    import tempfile
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    state = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    sock = os.path.join(state, "yund.sock")
    args = [os.path.join(root, "build", "yund"), "-s", state, "--set", "log_level=warn"]
    for s in settings:
        args += ["--set", s]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return p, state, sock
