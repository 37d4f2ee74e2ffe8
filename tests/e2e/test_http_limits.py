"""yund's HTTP server under abuse (issue 9, items 4, 8, 9, 10): a connection
cap with a clean 503 for the excess, no spin when descriptors run out, a raised
descriptor limit, body limits enforced before and while reading, JSON 405 for
unknown methods, and error bodies and events that survive bytes which are not
UTF-8."""
import json
import os
import resource
import socket
import sqlite3
import threading
import time
import urllib.parse
import weakref

from conftest import Yund, wait_for

MB = 1 << 20


def connect(y, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(y.sock)
    return s


_readers = weakref.WeakKeyDictionary()


def read_reply(s, head=False):
    """The next HTTP reply on s (replies to pipelined requests are read one
    by one): (status, headers dict, body bytes). head: a reply to HEAD."""
    f = _readers.get(s)
    if f is None:
        f = _readers[s] = s.makefile("rb")
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("connection closed before a reply")
    status = int(status_line.split()[1])
    headers = {}
    for line in iter(f.readline, b""):
        if line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b"" if head else f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def raw_request(y, text, timeout=10):
    s = connect(y, timeout)
    try:
        try:
            s.sendall(text)
        except OSError:
            pass  # the server may answer and close before reading it all
        return read_reply(s)
    finally:
        s.close()


def json_error(status_headers_body, status, code):
    st, headers, body = status_headers_body
    assert st == status, (st, body)
    assert headers.get("content-type") == "application/json", headers
    err = json.loads(body)["error"]
    assert err["code"] == code and err["message"], err
    return err["message"], headers


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def api_requests(y):
    st, text = y.request("GET", "/metrics")
    text = text.decode() if isinstance(text, bytes) else str(text)
    return int(next(line.split()[1] for line in text.splitlines()
                    if line.startswith("yun_api_requests_total ")))


def log_lines(y, needle):
    return sum(needle in line for line in y.logtext(tail=10**8).splitlines())


# ---- item 4: connections ----

def test_connections_over_the_cap_get_503_and_the_api_recovers(state_dir):
    y = Yund(state_dir, ["--set", "max_connections=20"]).start()
    idle = []
    try:
        idle = [connect(y) for _ in range(20)]
        # accepted in order: once these 20 are in, the next one is over the cap
        msg, headers = json_error(raw_request(y, b"GET /healthz HTTP/1.1\r\nHost: y\r\n\r\n"),
                                  503, "unavailable")
        assert headers.get("connection") == "close"
        cpu0 = cpu_seconds(y.proc.pid)
        for _ in range(200):  # many more idle clients: each is shed, none kept
            s = connect(y)
            st, _, _ = read_reply(s)
            assert st == 503
            s.close()
        time.sleep(2)
        assert cpu_seconds(y.proc.pid) - cpu0 < 1.0  # shedding, not spinning
        assert log_lines(y, "max_connections") <= 3  # rate-limited
        for s in idle:
            s.close()
        idle = []
        wait_for(lambda: y.request("GET", "/healthz")[0] == 200, 10, what="API back")
        assert y.request("GET", "/v1/vms")[0] == 200
    finally:
        for s in idle:
            s.close()
        y.stop()


def test_descriptor_exhaustion_pauses_accept_instead_of_spinning(state_dir):
    y = Yund(state_dir).start()  # default max_connections (256) > descriptors left
    clients = []
    try:
        resource.prlimit(y.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        for _ in range(120):
            clients.append(connect(y))
        # the listener has hit EMFILE by now: accepting must pause, not spin
        wait_for(lambda: log_lines(y, "accept") >= 1, 10, what="the accept warning")
        cpu0 = cpu_seconds(y.proc.pid)
        time.sleep(2)
        assert cpu_seconds(y.proc.pid) - cpu0 < 1.0
        assert log_lines(y, "accept") <= 2, y.logtext()
        assert os.path.getsize(os.path.join(state_dir, "test-yund.log")) < MB
        for s in clients:
            s.close()
        clients = []
        wait_for(lambda: y.request("GET", "/healthz", timeout=5)[0] == 200, 20,
                 what="API back after the clients left")
    finally:
        for s in clients:
            s.close()
        y.stop()


def test_soft_descriptor_limit_is_raised_at_start(state_dir):
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert old[1] > 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, old[1]))
    try:
        y = Yund(state_dir).start()  # inherits soft 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    try:
        with open(f"/proc/{y.proc.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        soft = int(line.split()[3])
        assert soft == old[1], line
        assert "open files limit raised from 256" in y.logtext(tail=10**6)
    finally:
        y.stop()


# ---- item 8: body limits ----

def test_body_over_max_body_is_refused_from_its_header(yund):
    s = connect(yund)
    try:
        # headers only: the answer must come without the body being sent
        s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: y\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1048576\r\n\r\n")
        msg, headers = json_error(read_reply(s), 413, "too_large")
        assert "1048576" in msg and headers.get("connection") == "close"
    finally:
        s.close()
    # curl-style Expect: 100-continue gets the 413 instead of the 100
    msg, _ = json_error(raw_request(yund, b"POST /v1/vms HTTP/1.1\r\nHost: y\r\n"
                                    b"Expect: 100-continue\r\nContent-Length: 70000\r\n\r\n"),
                        413, "too_large")


def test_chunked_body_over_max_body_is_refused_while_reading(yund):
    # one chunk announced larger than the limit
    json_error(raw_request(yund, b"POST /v1/vms HTTP/1.1\r\nHost: y\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n20000\r\n" + b"x" * 1000),
               413, "too_large")
    # many small chunks adding up past it; the body is never terminated
    s = connect(yund)
    try:
        s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(80):
                s.sendall(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        except OSError:
            pass
        json_error(read_reply(s), 413, "too_large")
    finally:
        s.close()
    # a chunked body within the limit is served as usual
    body = json.dumps({"name": "e2e-http-chunked", "image": "nosuch"}).encode()
    text = b"POST /v1/vms HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(body), 7):
        part = body[i:i + 7]
        text += b"%x\r\n" % len(part) + part + b"\r\n"
    st, _, out = raw_request(yund, text + b"0\r\n\r\n")
    assert st in (400, 404) and b"nosuch" in out, (st, out)


def test_big_bodies_are_not_buffered(yund):
    pid = yund.proc.pid
    rss0 = rss_bytes(pid)
    socks, errors = [], []

    def send(s, chunked):
        try:
            if chunked:
                s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(8):
                    s.sendall(b"100000\r\n" + b"x" * MB + b"\r\n")
            else:
                s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: y\r\nContent-Length: %d\r\n\r\n"
                          % (8 * MB))
                s.sendall(b"x" * (8 * MB - 1))  # never complete
        except OSError as e:
            errors.append(e)  # refused and closed by yund: expected

    threads = []
    for i in range(24):
        s = connect(yund, timeout=30)
        socks.append(s)
        t = threading.Thread(target=send, args=(s, i % 2 == 1))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(60)
    try:
        # measured while every client is still connected (or was refused)
        grown = rss_bytes(pid) - rss0
        assert grown < 64 * MB, f"RSS grew by {grown >> 20} MiB for 24 x 8 MiB bodies"
        for s in socks:
            s.settimeout(10)
            st, _, _ = read_reply(s)
            assert st == 413
    finally:
        for s in socks:
            s.close()
    assert yund.request("GET", "/healthz")[0] == 200


def test_header_limit_keepalive_and_pipelining(yund):
    big = b"X-Filler: " + b"a" * 70000 + b"\r\n"
    json_error(raw_request(yund, b"GET /healthz HTTP/1.1\r\nHost: y\r\n" + big + b"\r\n"),
               431, "headers_too_large")
    # two pipelined requests on one connection are answered in order
    s = connect(yund)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: y\r\n\r\nGET /v1/version HTTP/1.1\r\n"
                  b"Host: y\r\nConnection: close\r\n\r\n")
        st1, _, b1 = read_reply(s)
        st2, h2, b2 = read_reply(s)
        assert (st1, json.loads(b1)) == (200, {"status": "ok"})
        assert st2 == 200 and "version" in json.loads(b2) and h2.get("connection") == "close"
    finally:
        s.close()
    # HTTP/1.0 closes unless asked; HEAD has no body
    st, h, body = raw_request(yund, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert st == 200 and h.get("connection") == "close" and json.loads(body)["status"] == "ok"
    s = connect(yund)
    try:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: y\r\n\r\nGET /healthz HTTP/1.0\r\n"
                  b"Connection: keep-alive\r\n\r\n")
        st, h, body = read_reply(s, head=True)
        assert st == 200 and int(h["content-length"]) > 0
        st, h, body = read_reply(s)  # the HEAD reply carried no body
        assert st == 200 and h.get("connection") == "keep-alive"
    finally:
        s.close()
    json_error(raw_request(yund, b"GET /healthz HTTP/2.0\r\n\r\n"), 505, "http_version")
    json_error(raw_request(yund, b"garbage\r\n\r\n"), 400, "bad_request")


def test_parked_long_poll_client_leaving_is_clean(yund):
    n = api_requests(yund)
    s = connect(yund)
    s.sendall(b"GET /v1/events?after=999999&wait=60 HTTP/1.1\r\nHost: y\r\n\r\n")
    # parked once yund counted it (this /metrics request itself counts too)
    wait_for(lambda: api_requests(yund) >= n + 3, 10, what="the long poll to be parked")
    s.close()  # parked request's close callback runs; yund keeps serving
    after = yund.request("GET", "/v1/events?limit=1")[1]["last_id"]
    s = connect(yund)
    try:
        s.sendall(b"GET /v1/events?after=%d&wait=60 HTTP/1.1\r\nHost: y\r\n\r\n" % after)
        yund.request("POST", "/v1/alert-rules", {"name": "e2e-http-wake", "metric": "cpu",
                                                 "op": ">", "threshold": 99})
        st, _, body = read_reply(s)
        assert st == 200 and json.loads(body)["events"], body
    finally:
        s.close()


# ---- item 10: methods ----

def test_unknown_methods_get_json_405_with_allow(yund):
    for method in (b"OPTIONS", b"FOO", b"TRACE"):
        for path in (b"/v1/vms", b"/healthz"):
            msg, headers = json_error(
                raw_request(yund, method + b" " + path + b" HTTP/1.1\r\nHost: y\r\n\r\n"),
                405, "method_not_allowed")
            assert "GET" in headers["allow"] and "POST" in headers["allow"], headers
            assert method.decode() in msg


# ---- item 9: bytes that are not UTF-8 ----

def test_error_bodies_survive_invalid_and_cut_utf8(yund):
    st, body = yund.request("GET", "/v1/vms/%ff")
    assert st == 404 and body["error"]["code"] == "not_found", body
    assert "\\xff" in body["error"]["message"]
    # a message cut by its fixed-size buffer inside a multi-byte character
    for pad in range(3):
        name = "a" * pad + "\u4e2d" * 200
        st, body = yund.request("GET", "/v1/vms/" + urllib.parse.quote(name))
        assert isinstance(body, dict) and body["error"]["message"], (st, body)
    st, body = yund.request("POST", "/v1/vms", raw=b'{"name": "\xff"}',
                            headers={"Content-Type": "application/json"})
    assert st == 400 and body["error"]["code"] == "invalid_json", body


def test_event_with_a_cut_multibyte_reason_is_listed(yund):
    st, _ = yund.request("POST", "/v1/volumes", {"name": "e2e-http-vol", "size": "1M"})
    assert st == 201
    # "to <dest> (qcow2)" is cut at 511 bytes: put a 3-byte character there
    # (exports go to export_dirs: by default DIR/exchange)
    base = os.path.join(yund.state_dir, "exchange")
    d = base
    while len(("to " + d).encode()) < 300:
        d = os.path.join(d, "d" * 100)
    os.makedirs(d, exist_ok=True)
    prefix = len(("to " + d + "/").encode())
    dest = os.path.join(d, "a" * (510 - prefix) + "\u4e2d" * 10 + ".qcow2")
    assert len(os.path.basename(dest).encode()) < 255
    t = yund.task_wait(yund.request("POST", "/v1/volumes/e2e-http-vol/actions/export",
                                    {"path": dest}))  # an export is a task
    assert t["state"] == "succeeded", t
    evs = [e for e in yund.events("e2e-http-vol") if e["action"] == "export"]
    assert evs and evs[-1]["result"] == "ok", evs
    reason = evs[-1]["reason"]
    assert reason.startswith("to " + base) and reason.endswith("a"), reason
    assert len(reason.encode()) == 510


def test_old_event_rows_with_invalid_bytes_are_listed(yund):
    db = sqlite3.connect(os.path.join(yund.state_dir, "yun.db"), timeout=10)
    db.execute("INSERT INTO events (ts, object_type, object, action, result, reason) "
               "VALUES (?, 'vm', 'e2e-http-old', 'start', 'error', CAST(? AS TEXT))",
               (int(time.time() * 1000), b"cut \xe4\xb8 and \xff"))
    db.commit()
    db.close()
    evs = yund.events("e2e-http-old")
    assert len(evs) == 1 and evs[0]["reason"] == "cut \\xe4\\xb8 and \\xff", evs
