"""A guest agent that never answers costs yund nothing on the request path
(issue 9, item 5), and `yun vm stop` waits on the event stream instead of
polling the VM (item 16).

The silent guest is the tiny image booted with `yun.silent_agent=1`: its init
opens the agent's virtio-serial port, so QEMU reports the agent up, and never
reads it, so every agent exchange yund starts runs into its timeout."""
import os
import socket
import threading

from conftest import Yund, wait_for

SILENT = "console=ttyS0 panic=-1 quiet yun.silent_agent=1"
# yund gives an agent exchange 3 s (GUEST_FACTS_TIMEOUT_MS, the exec's
# QGA_TIMEOUT_MS); a request that waited for one would take at least that.
AGENT_TIMEOUT_S = 3.0


def test_silent_agent_never_holds_up_a_request(yund):
    y = yund
    name = "e2e-gagent-silent"
    y.ensure_tiny()
    y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--cmdline", SILENT,
          "--start")
    wait_for(lambda: "never answering" in y.console_log(name), 90, interval=0.2,
             what="the tiny guest to hold its agent port open")
    v = wait_for(lambda: (lambda v: v if v.get("guest_agent") else None)(y.vm(name)), 30,
                 what="QEMU to report the agent port open")
    # The first facts refresh ran into the agent's timeout in the background;
    # show said so without waiting for it.
    v = wait_for(lambda: (lambda v: v if v.get("guest_agent_error") else None)(y.vm(name)), 30,
                 what="the background refresh to give up on the agent")
    assert v["guest_agent_answering"] is False and v["guest_facts_at"] == 0, v
    assert "does not answer" in v["guest_agent_error"], v
    assert "guest_os" not in v and "ip_addresses" not in v, v
    ev = [e for e in y.events(name) if e["action"] == "guest-agent" and e["result"] == "error"]
    assert ev and "not answering" in ev[-1]["reason"], ev

    # An exec waits for the agent in the background; meanwhile yund serves
    # other requests, which see the exchange pending.
    result = {}

    def run_exec():
        result["exec"] = y.request("POST", f"/v1/vms/{name}/exec", {"argv": ["true"]})

    t = threading.Thread(target=run_exec)
    t.start()
    try:
        v = wait_for(lambda: (lambda v: v if v.get("guest_agent_pending", 0) >= 1 else None)(
            y.vm(name)), AGENT_TIMEOUT_S * 3, interval=0.02, what="the exec's agent exchange")
        assert t.is_alive(), "the exec answered before yund served the show"
        for path in (f"/v1/vms/{name}", "/v1/vms", "/healthz"):
            st, b = y.request("GET", path)
            assert st == 200, b
        # served while the exec still waits on the agent: nothing waited for it
        assert t.is_alive(), "yund answered the exec before the other requests"
    finally:
        t.join(60)
    st, b = result["exec"]
    assert st == 502 and b["error"]["code"] == "guest_agent", (st, b)
    assert "does not answer" in b["error"]["message"], b

    # a snapshot does not wait on an agent the background refresh found
    # silent: it is crash-consistent at once, and says why
    st, b = y.request("POST", f"/v1/vms/{name}/snapshots", {"name": "s1"})
    assert st in (200, 201) and b["consistency"] == "crash", (st, b)
    ev = [e for e in y.events(name) if e["action"] == "snapshot" and "s1" in e["reason"]]
    assert any("not answering" in e["reason"] for e in ev), ev

    # stop asks the agent in the background and answers at once; when the
    # agent does not take the request, the ACPI button powers the guest off.
    st, b = y.request("POST", f"/v1/vms/{name}/actions/stop")
    assert st == 200 and b["state"] == "stopping", b
    # the reply came before the agent's timeout ran out: no fallback yet
    assert not [e for e in y.events(name) if "ACPI power button" in e["reason"]]
    wait_for(lambda: y.vm(name)["state"] == "stopped", 60, what="the guest to power off")
    ev = [e for e in y.events(name) if e["action"] == "stop"]
    assert "guest agent asked" in ev[0]["reason"], ev
    assert "ACPI power button pressed" in ev[-1]["reason"], ev
    v = y.vm(name)
    assert v["guest_agent"] is False and "guest_agent_pending" not in v, v

    # QEMU exiting drops the guest state and answers an exec still waiting on
    # the agent (nothing dangles: the fixture checks the log for ASan reports)
    y.yun("vm", "start", name)
    wait_for(lambda: y.vm(name).get("guest_agent"), 90, interval=0.2,
             what="the agent port open again")
    t = threading.Thread(target=run_exec)
    t.start()
    try:
        wait_for(lambda: y.vm(name).get("guest_agent_pending", 0) >= 1, AGENT_TIMEOUT_S * 3,
                 interval=0.02, what="an agent exchange in flight")
        y.yun("vm", "stop", "--force", name)
    finally:
        t.join(60)
    st, b = result["exec"]
    assert st == 502 and b["error"]["code"] == "guest_agent", (st, b)
    y.yun("vm", "delete", name)
    y.check_invariants()


class RequestLog:
    """A Unix-socket proxy in front of yund that records every request line
    (the CLI makes one request per connection)."""

    def __init__(self, target, path):
        self.target, self.path, self.lines = target, path, []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.target)
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, record):
        head = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record and b"\r\n" not in head:
                    head += data
                    if b"\r\n" in head:
                        self.lines.append(head.split(b"\r\n", 1)[0].decode())
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def count(self, prefix):
        return sum(1 for line in self.lines if line.startswith(prefix))

    def close(self):
        self.srv.close()


def test_cli_stop_waits_on_events_not_polling(state_dir):
    # A paused guest cannot see the ACPI button: yund quits QEMU after its
    # stop_timeout, so the stop lasts seconds (30 polls of the old CLI).
    y = Yund(state_dir, ["--set", "stop_timeout=3"]).start()
    try:
        name = "e2e-gagent-stop"
        y.ensure_tiny()
        y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--start")
        y.yun("vm", "pause", name)
        proxy = RequestLog(y.sock, os.path.join(state_dir, "proxy.sock"))
        try:
            cli = Yund(state_dir)
            cli.sock = proxy.path
            p = cli.yun("vm", "stop", name)
            assert p.stdout.strip() == f"vm {name} stopped", p.stdout
            assert y.vm(name)["state"] == "stopped"
            # one look at the VM for the final answer, no polling
            assert proxy.count(f"GET /v1/vms/{name}") <= 1, proxy.lines
            assert proxy.count("GET /v1/events?") >= 1, proxy.lines
            assert proxy.count(f"POST /v1/vms/{name}/actions/stop") == 1, proxy.lines

            # the same overall timeout, with a clear message when it passes
            y.yun("vm", "start", name)
            y.yun("vm", "pause", name)
            p = cli.yun("vm", "stop", "--timeout", "1", name, check=False)
            assert p.returncode == 1, (p.returncode, p.stderr)
            assert f"vm {name} did not stop within 1 s (it is stopping" in p.stderr, p.stderr
            wait_for(lambda: y.vm(name)["state"] == "stopped", 60, what="the quit after stop_timeout")

            # force-stop waits the same way
            y.yun("vm", "start", name)
            before = proxy.count(f"GET /v1/vms/{name}")
            p = cli.yun("vm", "stop", "--force", name)
            assert p.stdout.strip() == f"vm {name} stopped", p.stdout
            assert proxy.count(f"GET /v1/vms/{name}") - before <= 1, proxy.lines
        finally:
            proxy.close()
        y.yun("vm", "delete", name)
        y.check_invariants()
    finally:
        y.stop()


def test_restarted_yund_finds_the_agent_and_refreshes_in_the_background(state_dir):
    """After a yund restart no VSERPORT_CHANGE comes: query-chardev says the
    port is open, and the facts refresh starts in the background then."""
    y = Yund(state_dir).start()
    name = "e2e-gagent-restart"
    try:
        y.ensure_tiny()
        y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--cmdline", SILENT,
              "--start")
        wait_for(lambda: y.vm(name).get("guest_agent"), 90, interval=0.2,
                 what="QEMU to report the agent port open")
    finally:
        y.stop()  # leaves the VM running
    y = Yund(state_dir).start()
    try:
        v = wait_for(lambda: (lambda v: v if v.get("guest_agent_error") else None)(y.vm(name)),
                     30, what="the refresh after re-attaching to give up on the agent")
        assert v["guest_agent"] is True and v["guest_agent_answering"] is False, v
        y.yun("vm", "stop", "--force", name)
        y.yun("vm", "delete", name)
        y.check_invariants()
    finally:
        y.stop()
