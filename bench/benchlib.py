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


def call(sock, method, path, body=None, raw=False):
    """One request; returns (status, decoded JSON or raw bytes)."""
    c = Conn(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (data if raw else (json.loads(data) if data else None))


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
