"""The live serial console through the API: GET /v1/vms/NAME/console upgraded
("Upgrade: yun-console") to raw bytes both ways, on a real yund and QEMU.
Two clients at once (the host's hub fans QEMU's one connection out), detach
and reconnect, and the refusals: unknown VM 404, stopped VM 409, a bad
upgrade 400 (a plain GET is still the console log)."""
import socket

from conftest import MARKER, console_upgrade, read_until


def open_console(y, name, headers=None):
    """The upgraded socket and the bytes read past the 101's head; or
    (status, raw answer) when it was refused."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(y.sock)
    h = headers if headers is not None else {"Connection": "Upgrade", "Upgrade": "yun-console"}
    return console_upgrade(s, "yund", f"/v1/vms/{name}/console", h)


def test_live_console_through_the_api(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-live", "--image", "tiny", "--memory", "96M", "--start")
    yund.wait_marker("e2e-live")

    a, pre_a = open_console(yund, "e2e-live")
    b, pre_b = open_console(yund, "e2e-live")  # a second client at the same time
    a.sendall(b"\necho live-$((6*7))-ok\n")
    read_until(a, b"live-42-ok", pre_a)
    read_until(b, b"live-42-ok", pre_b)  # b sees what a's command printed
    b.sendall(b"echo from-b-$((2+3))\n")
    read_until(a, b"from-b-5")
    a.close()  # detach one: the other goes on
    b.sendall(b"echo still-$((1+1))\n")
    read_until(b, b"still-2")
    b.close()

    # clients come and go (more than a VM's 16 at once, one after another):
    # each one that left is gone from the host's hub
    for i in range(20):
        s, pre = open_console(yund, "e2e-live")
        s.sendall(f"echo round-$(({i}+100))\n".encode())
        read_until(s, f"round-{i + 100}".encode(), pre)
        s.close()

    # reconnect after everyone left: QEMU's socket is free again
    c, pre = open_console(yund, "e2e-live")
    c.sendall(b"\n")
    read_until(c, b"#", pre)
    c.sendall(b"echo again-$((3*3))\n")
    read_until(c, b"again-9")

    # the VM stops: the console ends (EOF), and a new one is 409
    yund.yun("vm", "stop", "--force", "e2e-live")
    c.settimeout(30)
    while c.recv(65536):
        pass
    c.close()
    st, raw = open_console(yund, "e2e-live")
    assert st == 409 and b"conflict" in raw, raw
    # the log (a plain GET) is still there
    assert MARKER in yund.console_log("e2e-live")
    yund.check_invariants()


def test_console_refusals(yund):
    yund.ensure_tiny()
    st, raw = open_console(yund, "e2e-nope")
    assert st == 404, raw
    yund.yun("vm", "create", "e2e-cold", "--image", "tiny", "--memory", "96M")
    st, raw = open_console(yund, "e2e-cold")
    assert st == 409 and b"console is live only while it runs" in raw, raw
    st, raw = open_console(yund, "e2e-cold", {"Upgrade": "websocket", "Connection": "Upgrade"})
    assert st == 400 and b"yun-console" in raw, raw
    st, raw = open_console(yund, "e2e-cold", {"Upgrade": "yun-console"})  # no Connection: Upgrade
    assert st == 400, raw
    # the CLI says so too
    p = yund.yun("vm", "console", "e2e-cold", check=False, input="")
    assert p.returncode == 1 and "live only while it runs" in p.stderr, p.stderr
    p = yund.yun("vm", "console", "e2e-nope", check=False, input="")
    assert p.returncode == 1 and "e2e-nope" in p.stderr, p.stderr
    # nothing changed: yund still serves, the VM still stopped
    assert yund.vm("e2e-cold")["state"] == "stopped"


def test_console_over_tcp_needs_the_token(state_dir):
    import os
    import subprocess
    from conftest import YUN, Yund
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tok = os.path.join(state_dir, "api.token")
    with open(tok, "w") as f:
        f.write("console-token-0123456789abcdef\n")
    y = Yund(state_dir, ["--set", f"listen=127.0.0.1:{port}", "--set", f"token_file={tok}"]).start()
    try:
        y.ensure_tiny()
        y.yun("vm", "create", "e2e-tcp", "--image", "tiny", "--memory", "96M", "--start")
        y.wait_marker("e2e-tcp")
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"GET /v1/vms/e2e-tcp/console HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: Upgrade\r\nUpgrade: yun-console\r\n\r\n")
        assert c.recv(4096).split()[1] == b"401"
        c.close()
        url = f"http://127.0.0.1:{port}"
        p = subprocess.run([YUN, "--url", url, "--token", "console-token-0123456789abcdef",
                            "vm", "console", "e2e-tcp"], input="\necho tcp-$((6*7))-ok\n",
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "tcp-42-ok" in p.stdout, (p.stderr, p.stdout[-2000:])
        p = subprocess.run([YUN, "--url", url, "--token", "wrong-token-0123456789abcdef",
                            "vm", "console", "e2e-tcp"], input="", capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1, p
        y.yun("vm", "stop", "--force", "e2e-tcp")
    finally:
        y.stop()
