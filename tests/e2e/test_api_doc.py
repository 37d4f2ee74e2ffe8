"""docs/api.yaml stays true to yund's route table (`yund --routes=json`):
every row is documented with its method and the same summary, every
documented path and method is a row, rows that take a body document one;
every documented route is routed (answers something other than 'no route'),
a method a path does not take gets 405 with the path's methods in Allow; and
on TCP only the public rows answer without the token."""
import http.client
import json
import os
import re
import socket
import subprocess

import yaml

from conftest import ROOT, YUND, UnixHTTPConnection, Yund

METHODS = ("get", "head", "post", "put", "patch", "delete")


def doc_paths():
    return yaml.safe_load(open(os.path.join(ROOT, "docs", "api.yaml")))["paths"]


def documented():
    """{(METHOD, path): operation} from docs/api.yaml."""
    out = {}
    for path, ops in doc_paths().items():
        for method, op in ops.items():
            if method in METHODS:
                out[(method.upper(), path)] = op
    return out


def table():
    p = subprocess.run([YUND, "--routes=json"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) >= 40, rows
    return {(r["method"], r["pattern"]): r for r in rows}


def test_route_table_and_doc_agree_both_ways():
    rows, doc = table(), documented()
    assert len(rows) == len(subprocess.run([YUND, "--routes"], capture_output=True,
                                           text=True).stdout.splitlines())
    undocumented = sorted(set(rows) - set(doc))
    assert not undocumented, f"routes missing from docs/api.yaml: {undocumented}"
    unrouted = sorted(set(doc) - set(rows))
    assert not unrouted, f"documented but not in the route table: {unrouted}"
    for key, row in rows.items():
        op = doc[key]
        assert op.get("summary"), f"{key} has no summary in docs/api.yaml"
        assert op["summary"] == row["summary"], (key, op["summary"], row["summary"])
        if "body" in row["flags"]:
            assert "requestBody" in op, f"{key} takes a body; docs/api.yaml shows none"
        if row["check_body"]:
            assert "body" in row["flags"], key
    # path parameters in the doc name the pattern's {params}
    for path, ops in doc_paths().items():
        params = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in ops.get("parameters", []) if p.get("in") == "path"}
        assert params == declared, (path, params, declared)


def concrete(path):
    if path.startswith("/v1/alert-rules/{name}"):
        return path.replace("{name}", "doc-rule")
    if path.startswith("/v1/volumes/{name}"):
        return path.replace("{name}", "doc-vol")
    if path.startswith("/v1/images/{name}"):
        return path.replace("{name}", "tiny")
    return path.replace("{name}", "doc").replace("{snapshot}", "nosuch")


def matches(pattern, path):
    ps, xs = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(ps) == len(xs) and all(p.startswith("{") or p == x for p, x in zip(ps, xs))


def raw(yund, method, path):
    c = UnixHTTPConnection(yund.sock, timeout=30)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Allow"), json.loads(body) if body else None


def test_every_documented_route_is_routed(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "doc", "--image", "tiny", "--memory", "96M")
    yund.yun("volume", "create", "doc-vol", "--size", "1M")
    yund.yun("alert", "rule", "add", "doc-rule", "--metric", "cpu", "--op", ">",
             "--threshold", "1")
    checked = 0
    for (method, path) in sorted(documented()):
        if method == "DELETE":
            continue  # routing of DELETE is exercised by the lifecycle tests
        if path.endswith("/actions/start"):
            continue  # would boot the VM; the lifecycle tests start VMs
        st, body = yund.request(method, concrete(path), body={} if method == "POST" else None)
        msg = body["error"]["message"] if isinstance(body, dict) and "error" in body else ""
        assert not re.search(r"no (such )?route", msg), (method, path, st, msg)
        assert st != 405, (method, path, st, msg)
        checked += 1
    assert checked >= 30
    # a method the path does not take: 405, and Allow lists the documented ones
    paths = doc_paths()
    for path in paths:
        # every documented pattern the concrete path matches (/v1/images/build
        # is also /v1/images/{name}) contributes its methods
        methods = {m.upper() for p, ops in paths.items() if matches(p, concrete(path))
                   for m in ops if m in METHODS}
        if "GET" in methods:
            methods.add("HEAD")
        st, allow, body = raw(yund, "PUT", concrete(path))
        assert st == 405 and body["error"]["code"] == "method_not_allowed", (path, st, body)
        assert set(allow.split(", ")) == methods, (path, allow, methods)
    st, allow, body = raw(yund, "GET", "/v1/vms/doc/nothing-here")
    assert st == 404 and body["error"]["code"] == "not_found" and allow is None, body
    assert "no route" in body["error"]["message"]
    # HEAD answers wherever GET does
    st, _, body = raw(yund, "HEAD", "/v1/vms")
    assert st == 200 and body is None
    yund.yun("alert", "rule", "rm", "doc-rule")
    yund.check_invariants()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_only_public_routes_skip_the_token(state_dir):
    public = sorted(k for k, r in table().items() if "public" in r["flags"])
    # the agents' routes: each authenticates itself (the join token in the
    # body; X-Yun-Host and the host's credential), never the API token
    assert public == [("GET", "/healthz"), ("GET", "/v1/cluster/images/{name}/{file}"),
                      ("GET", "/v1/health"), ("POST", "/v1/cluster/events"),
                      ("POST", "/v1/cluster/heartbeat"), ("POST", "/v1/cluster/join")], public
    tok = os.path.join(state_dir, "token")
    with open(tok, "w") as f:
        f.write("route-table-token-0123456789\n")
    port = free_port()
    y = Yund(state_dir, ["--set", f"listen=127.0.0.1:{port}", "--set", f"token_file={tok}"]).start()
    try:
        def req(method, path, token=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {})
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, json.loads(body) if body else None

        assert req("GET", "/healthz") == (200, {"status": "ok"})
        # everything else, routed or not, asks for the token first
        for method, path in (("GET", "/v1/host"), ("GET", "/metrics"), ("GET", "/v1/nothing"),
                             ("POST", "/healthz"), ("OPTIONS", "/v1/vms")):
            st, body = req(method, path)
            assert st == 401 and body["error"]["code"] == "unauthorized", (method, path, st, body)
        assert req("GET", "/v1/host", "route-table-token-0123456789")[0] == 200
        # the API token is no agent credential
        st, body = req("POST", "/v1/cluster/heartbeat", "route-table-token-0123456789")
        assert st == 401 and body["error"]["code"] == "unauthorized", (st, body)
        st, body = req("GET", "/v1/cluster/images/tiny/disk.qcow2", "route-table-token-0123456789")
        assert st == 401 and body["error"]["code"] == "unauthorized", (st, body)
        assert req("POST", "/healthz", "route-table-token-0123456789")[0] == 405
    finally:
        y.stop()
