"""The VM monitor against real peers: a burning VM trips a rule whose webhook
receiver (an HTTP server run by the test) gets Alertmanager-format payloads,
firing and then resolved; an SMTP server on loopback (aiosmtpd) receives the
email; an SMS gateway that fails once sees the retry; promtool accepts
/metrics; bad rules get clear 4xx errors."""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import Yund, wait_for


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Receiver:
    """An HTTP server on loopback recording every POST; `fail_first` answers
    500 to the first N requests."""

    def __init__(self, fail_first=0):
        self.requests = []
        self.fail_left = fail_first
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, self.headers.get("Content-Type"), body))
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.srv = http.server.HTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def payloads(self):
        return [json.loads(b) for _, ct, b in self.requests if ct == "application/json"]

    def close(self):
        self.srv.shutdown()


@pytest.fixture
def mon_yund(state_dir):
    y = Yund(state_dir, ["--set", "sample_interval=1", "--set", "notify_backoff_ms=200"]).start()
    yield y
    y.stop()


def test_burning_vm_fires_then_resolves_webhook(mon_yund):
    y = mon_yund
    hook = Receiver()
    try:
        y.ensure_tiny()
        y.yun("vm", "create", "e2e-burn", "--image", "tiny", "--memory", "96M",
              "--cmdline", "console=ttyS0 panic=-1 quiet yun.burn=1", "--start")
        y.wait_marker("e2e-burn")
        y.yun("alert", "rule", "add", "burn-cpu", "--metric", "cpu", "--scope", "vm:e2e-burn",
              "--window", "3s", "--op", ">", "--threshold", "25", "--for", "3s",
              "--severity", "critical", "--label", "team=ops",
              "--channel", "webhook:" + hook.url())
        wait_for(lambda: hook.payloads(), 60, interval=0.2, what="the firing webhook")
        p = hook.payloads()[0]
        # Alertmanager webhook format, as its receivers expect it
        for key in ("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
                    "commonAnnotations", "externalURL", "alerts"):
            assert key in p, key
        assert p["version"] == "4" and p["status"] == "firing"
        a = p["alerts"][0]
        assert a["status"] == "firing" and a["endsAt"] == "0001-01-01T00:00:00Z"
        assert a["labels"]["alertname"] == "burn-cpu" and a["labels"]["vm"] == "e2e-burn"
        assert a["labels"]["severity"] == "critical" and a["labels"]["team"] == "ops"
        assert a["startsAt"].endswith("Z") and a["fingerprint"]
        assert float(a["annotations"]["value"]) > 25
        # `for` was respected: pending came first, firing at least 3 s later
        ev = [e for e in y.events("burn-cpu") if e["action"] in ("pending", "firing")]
        assert ev[0]["action"] == "pending"
        firing = next(e for e in ev if e["action"] == "firing")
        assert firing["ts"] - ev[0]["ts"] >= 3000 - 1100  # sampled once a second
        st, alerts = y.request("GET", "/v1/alerts?state=firing")
        assert any(x["rule"] == "burn-cpu" for x in alerts["alerts"])
        # the load stops (the guest is paused): a resolved notification follows
        y.yun("vm", "pause", "e2e-burn")
        wait_for(lambda: any(q["status"] == "resolved" for q in hook.payloads()), 60,
                 interval=0.2, what="the resolved webhook")
        r = next(q for q in hook.payloads() if q["status"] == "resolved")
        assert r["alerts"][0]["status"] == "resolved"
        assert r["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        notes = [e for e in y.events("burn-cpu") if e["action"] == "notify"]
        assert all(e["result"] == "ok" for e in notes) and len(notes) >= 2
    finally:
        hook.close()


def test_email_reaches_smtp_server(state_dir):
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.msgs = []

        async def handle_DATA(self, server, session, envelope):
            self.msgs.append(envelope)
            return "250 OK"

    sink = Sink()
    port = free_port()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    y = Yund(state_dir, ["--set", "sample_interval=1", "--set", f"smtp_url=smtp://127.0.0.1:{port}",
                         "--set", "smtp_from=yund@example.test"]).start()
    try:
        # the host always has load >= 0: fires on the first evaluation
        y.yun("alert", "rule", "add", "host-up", "--scope", "host", "--metric", "load1",
              "--op", ">=", "--threshold", "0", "--window", "5s",
              "--channel", "email:ops@example.test")
        wait_for(lambda: sink.msgs, 30, interval=0.2, what="the alert email")
        env = sink.msgs[0]
        assert env.mail_from == "yund@example.test"
        assert env.rcpt_tos == ["ops@example.test"]
        text = env.content.decode()
        assert "Subject: [FIRING:1] host-up (warning)" in text
        assert "host avg of load1" in text
    finally:
        y.stop()
        ctl.stop()


def test_sms_gateway_retries_then_delivers(state_dir):
    gw = Receiver(fail_first=1)
    y = Yund(state_dir, ["--set", "sample_interval=1", "--set", "notify_backoff_ms=200",
                         "--set", f"sms_url={gw.url('/sms')}",
                         "--set", 'sms_body={"to":"{to}","text":"{message}"}']).start()
    try:
        y.yun("alert", "rule", "add", "sms-rule", "--scope", "host", "--metric", "mem_used",
              "--op", ">", "--threshold", "0", "--window", "5s", "--channel", "sms:+15550001")
        wait_for(lambda: len(gw.requests) >= 2, 30, interval=0.1, what="the retried SMS")
        body = json.loads(gw.requests[1][2])
        assert body["to"] == "+15550001" and "sms-rule" in body["text"]
        notes = wait_for(lambda: [e for e in y.events("sms-rule") if e["action"] == "notify"]
                         if len([e for e in y.events("sms-rule") if e["action"] == "notify"]) >= 2
                         else None, 10, what="notify events")
        assert "attempt 1: HTTP 500 (will retry)" in notes[0]["reason"]
        assert notes[1]["result"] == "ok" and "attempt 2: HTTP 200" in notes[1]["reason"]
    finally:
        y.stop()
        gw.close()


def test_silenced_rule_sends_nothing(mon_yund):
    y = mon_yund
    hook = Receiver()
    try:
        y.yun("alert", "rule", "add", "quiet", "--scope", "host", "--metric", "mem_used",
              "--op", ">", "--threshold", "0", "--window", "5s", "--for", "2s",
              "--channel", "webhook:" + hook.url())
        y.yun("alert", "silence", "quiet", "--for", "1h")
        wait_for(lambda: any(e["action"] == "silenced" for e in y.events("quiet")), 30,
                 what="the silenced event")
        assert hook.requests == []
        rules = json.loads(y.yun("alert", "rule", "list", "-o", "json").stdout)
        assert rules[0]["silenced_until"] > 0 and rules[0]["firing"] == 1
    finally:
        hook.close()


def test_prometheus_metrics_pass_promtool(mon_yund):
    y = mon_yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-prom", "--image", "tiny", "--memory", "96M", "--start")
    wait_for(lambda: "yun_vm_cpu_percent{vm=\"e2e-prom\"," in
             y.request("GET", "/metrics")[1].decode(), 30, interval=0.3, what="VM samples")
    text = y.request("GET", "/metrics")[1]
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is required; .ci/run installs it"
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr
    t = text.decode()
    assert 'yun_vms{state="running"} 1' in t
    # every VM and host series names its host, the same name on both
    m = re.search(r'yun_vm_up\{vm="e2e-prom",host="([^"]+)"\} 1', t)
    assert m, t
    assert 'yun_host_cpu_percent{host="%s"}' % m.group(1) in t
    # the metrics API serves the same samples as points
    st, r = y.request("GET", "/v1/vms/e2e-prom/metrics?name=cpu&since=-60")
    assert st == 200 and r["source"] == "memory" and len(r["points"]) >= 1
    st, r = y.request("GET", "/v1/host/metrics")
    assert st == 200 and "cpu" in r["metrics"] and "mem_used" in r["metrics"]
    out = y.yun("vm", "stats", "e2e-prom").stdout
    assert "cpu" in out and "mem_rss" in out
    top = y.yun("top", "-n", "1").stdout
    assert "e2e-prom" in top and "CPU%" in top


def test_bad_rules_get_clear_errors(yund):
    def post(body, raw=None):
        return yund.request("POST", "/v1/alert-rules", body=body, raw=raw)

    base = {"name": "r1", "metric": "cpu", "op": ">", "threshold": 1}
    st, b = post(dict(base, metric="bogus"))
    assert st == 400 and "unknown metric 'bogus'" in b["error"]["message"]
    assert "mem_rss" in b["error"]["message"]  # it lists the known ones
    st, b = post(dict(base, window=-5))
    assert st == 400 and "window" in b["error"]["message"]
    st, b = post(dict(base, window="-5s"))
    assert st == 400
    st, b = post(None, raw='{"name": "r1", ')
    assert st == 400 and b["error"]["code"] == "invalid_json"
    st, b = post(dict(base, op="=~"))
    assert st == 400 and "op must be" in b["error"]["message"]
    st, b = post(dict(base, threshold="high"))
    assert st == 400
    st, b = post(dict(base, channels=["pager:123"]))
    assert st == 400 and "webhook:URL" in b["error"]["message"]
    st, b = post(dict(base, scope="planet"))
    assert st == 400
    st, b = post(dict(base, colour="red"))
    assert st == 400 and "unknown field" in b["error"]["message"]
    assert post(base)[0] == 201
    assert post(base)[0] == 409
    assert yund.request("POST", "/v1/alert-rules/nope/silence", {"for": "1h"})[0] == 404
    assert yund.request("GET", "/v1/alerts?state=exploded")[0] == 400
    assert yund.request("GET", "/v1/host/metrics?name=warp")[0] == 400
    p = yund.yun("alert", "rule", "add", "r2", "--metric", "cpu", "--op", ">", "--threshold",
                 "x", check=False)
    assert p.returncode == 2
    p = yund.yun("alert", "rule", "add", "r2", "--metric", "nope", "--op", ">", "--threshold",
                 "1", check=False)
    assert p.returncode == 1 and p.stderr.startswith("yun: unknown metric")
    yund.yun("alert", "rule", "rm", "r1")
    assert yund.request("GET", "/v1/alert-rules")[1]["rules"] == []


def test_real_prometheus_scrapes_yund(state_dir):
    prom = shutil.which("prometheus")
    assert prom, "Debian's prometheus package is required; .ci/run installs it"
    tok = os.path.join(state_dir, "token")
    with open(tok, "w") as f:
        f.write("prometheus-scrape-token-0123\n")
    api_port, prom_port = free_port(), free_port()
    y = Yund(state_dir, ["--set", "sample_interval=1", "--set", f"listen=127.0.0.1:{api_port}",
                         "--set", f"token_file={tok}"]).start()
    cfg = os.path.join(state_dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: yun
    authorization:
      credentials_file: {tok}
    static_configs:
      - targets: ['127.0.0.1:{api_port}']
""")
    p = subprocess.Popen([prom, f"--config.file={cfg}",
                          f"--storage.tsdb.path={os.path.join(state_dir, 'tsdb')}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.parse
        import urllib.request

        def query(q):
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?query=" + urllib.parse.quote(q)
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    res = json.loads(r.read())["data"]["result"]
                    return res or None
            except OSError:
                return None

        up = wait_for(lambda: query('up{job="yun"}'), 60, interval=0.5,
                      what="Prometheus to scrape yund")
        assert up[0]["value"][1] == "1"
        host = wait_for(lambda: query("yun_host_memory_used_bytes"), 30, interval=0.5,
                        what="a yun_ series in Prometheus")
        assert float(host[0]["value"][1]) > 0
    finally:
        p.terminate()
        p.wait(timeout=30)
        y.stop()


def test_sample_goes_on_while_a_qemu_stops_answering(mon_yund):
    """A QEMU that does not answer QMP (SIGSTOPped) never holds up a sample:
    the agent answers by its deadline with the host's figures and that VM's
    /proc ones, the API keeps answering, and the QMP figures come back once
    QEMU runs again."""
    import signal
    y = mon_yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-stall", "--image", "tiny", "--memory", "96M", "--start")
    pid = y.vm("e2e-stall")["pid"]

    def points(path, metric):
        st, r = y.request("GET", f"{path}?name={metric}&since=-600")
        assert st == 200, r
        return r["points"]

    def samples():
        for line in y.request("GET", "/metrics")[1].decode().splitlines():
            if line.startswith("yun_monitor_samples_total "):
                return int(line.split()[1])
        raise AssertionError("no yun_monitor_samples_total")

    vm_path, host_path = "/v1/vms/e2e-stall/metrics", "/v1/host/metrics"
    # QMP figures (blockstats come from query-blockstats) are flowing
    wait_for(lambda: points(vm_path, "disk_read_bps"), 60, interval=0.2,
             what="the VM's block figures")
    os.kill(pid, signal.SIGSTOP)
    try:
        s0 = samples()
        # the sample that may have begun before the stop is done: every one
        # from here on asks a QEMU that cannot answer
        wait_for(lambda: samples() >= s0 + 1, 20, interval=0.1, what="a sample")
        t1 = time.time() * 1000
        wait_for(lambda: samples() >= s0 + 3, 20, interval=0.1,
                 what="samples while QEMU does not answer")
        t0 = time.monotonic()
        st, vms = y.request("GET", "/v1/vms", timeout=5)
        assert st == 200 and any(v["name"] == "e2e-stall" for v in vms["vms"])
        assert time.monotonic() - t0 < 2
        assert len([p for p in points(host_path, "cpu") if p[0] > t1]) >= 2
        # the VM is still reported from /proc, without its QMP figures
        assert [p for p in points(vm_path, "cpu") if p[0] > t1]
        assert not [p for p in points(vm_path, "disk_read_bps") if p[0] > t1]
    finally:
        os.kill(pid, signal.SIGCONT)
    t2 = time.time() * 1000
    wait_for(lambda: [p for p in points(vm_path, "disk_read_bps") if p[0] > t2], 30,
             interval=0.2, what="block figures again after SIGCONT")
    assert y.vm("e2e-stall")["state"] == "running"
    y.check_invariants()
