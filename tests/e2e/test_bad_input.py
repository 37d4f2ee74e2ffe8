"""Bad input gets a clear 4xx (or a non-zero CLI exit with one line) and
leaves no file, process or row behind."""
import os
import pathlib

from conftest import qemu_pids_for


def assert_error(resp, status, code=None):
    st, body = resp
    assert st == status, (st, body)
    assert isinstance(body, dict) and "error" in body, body
    assert body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]["message"]


def snapshot(y):
    st, r = y.request("GET", "/v1/vms")
    return ({v["name"] for v in r["vms"]}, set(os.listdir(os.path.join(y.state_dir, "vms"))),
            len(qemu_pids_for(y.state_dir)))


def test_api_rejects_bad_requests_and_leaves_nothing(yund):
    yund.ensure_tiny()
    st, _ = yund.request("POST", "/v1/vms", {"name": "e2e-ok", "image": "tiny", "memory": "96M"})
    assert st == 201
    before = snapshot(yund)

    m = assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-ok", "image": "tiny"}), 409,
                     "conflict")
    assert "already exists" in m
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-z", "image": "tiny", "memory_mb": 0}),
                 400, "invalid_argument")
    m = assert_error(yund.request("POST", "/v1/vms",
                                  {"name": "e2e-huge", "image": "tiny", "memory": "64T"}), 409,
                     "insufficient_capacity")
    assert "MiB" in m  # the numbers are in the message
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-c", "image": "tiny", "cpus": 0}), 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-c", "image": "tiny", "cpus": 100000}),
                 400)
    m = assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-x", "image": "nope"}), 404,
                     "not_found")
    assert "nope" in m
    assert_error(yund.request("POST", "/v1/vms", {"name": "bad/name", "image": "tiny"}), 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "", "image": "tiny"}), 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-u", "image": "tiny", "colour": 1}),
                 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-t", "image": "tiny", "cpus": "2"}),
                 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-w", "image": "tiny",
                                                  "cpu_weight": 20000}), 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-s", "image": "tiny",
                                                  "cpuset": "0-99"}), 400)
    assert_error(yund.request("POST", "/v1/vms", {"name": "e2e-d", "image": "tiny",
                                                  "disk": "1M"}), 400)
    assert_error(yund.request("POST", "/v1/vms", raw='{"name": "e2e-j", '), 400, "invalid_json")
    assert_error(yund.request("POST", "/v1/vms", raw='[1,2]'), 400, "invalid_json")
    assert_error(yund.request("POST", "/v1/vms", raw='{"name":"a","name":"b"}'), 400)
    big = '{"name": "e2e-big", "image": "tiny", "cmdline": "' + "x" * 200000 + '"}'
    assert_error(yund.request("POST", "/v1/vms", raw=big), 413, "too_large")
    assert_error(yund.request("GET", "/v1/nothing-here"), 404)
    assert_error(yund.request("GET", "/v2/vms"), 404)
    assert_error(yund.request("POST", "/v1/vms/e2e-ok/actions/explode"), 404)
    assert_error(yund.request("POST", "/v1/vms/e2e-ok/actions/resume"), 409)
    assert_error(yund.request("GET", "/v1/vms/ghost"), 404)
    assert_error(yund.request("GET", "/v1/events?limit=abc"), 400)

    assert snapshot(yund) == before
    yund.check_invariants()


def test_cli_errors_are_one_line_and_nonzero(yund):
    yund.ensure_tiny()
    cases = [
        (("vm", "create", "e2e-q"), 2),                                  # no --image
        (("vm", "create", "e2e-q", "--image", "tiny", "--memory", "lots"), 2),
        (("vm", "create", "e2e-q", "--image", "nope"), 1),
        (("vm", "create", "e2e-q", "--image", "tiny", "--cpu-max", "5"), 2),
        (("vm", "start", "ghost"), 1),
        (("vm", "frobnicate", "x"), 2),
        (("image", "import", "/nonexistent/file.qcow2"), 2),
        (("nonsense",), 2),
    ]
    for args, code in cases:
        p = yund.yun(*args, check=False)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("yun: "), (args, p.stderr)
    p = yund.yun("--socket", "/tmp/definitely-not-a-socket", "vm", "list", check=False)
    assert p.returncode == 3 and "is yund running" in p.stderr
    assert snapshot(yund) == (set(), set(), 0)


def test_bad_image_files_are_refused(yund, tmp_path):
    # imports come from the exchange directory (import_dirs' default)
    x = pathlib.Path(yund.state_dir) / "exchange"
    # a qcow2 header that lies about its size
    bad = x / "corrupt.qcow2"
    bad.write_bytes(b"QFI\xfb" + b"\x00\x00\x00\x03" + b"\xff" * 504)
    p = yund.yun("image", "import", str(bad), check=False)
    assert p.returncode == 1 and "yun: " in p.stderr
    # a text file is not a disk
    txt = x / "notes.img"
    txt.write_text("hello\n")
    p = yund.yun("image", "import", str(txt), check=False)
    assert p.returncode == 1 and "not a disk image" in p.stderr
    # a qcow2 with a backing file pointing elsewhere
    import subprocess
    base = x / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    ovl = x / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
                    str(ovl)], check=True)
    p = yund.yun("image", "import", str(ovl), check=False)
    assert p.returncode == 1 and "backing file" in p.stderr
    # raw asked for, qcow2 given
    p = yund.yun("image", "import", str(base), "--format", "raw", check=False)
    assert p.returncode == 1 and "not raw" in p.stderr
    st, r = yund.request("GET", "/v1/images")
    assert r["images"] == []
    assert os.listdir(os.path.join(yund.state_dir, "images")) == []
    # a good disk outside import_dirs is refused, and says where imports may come from
    outside = tmp_path / "outside.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(outside), "16M"], check=True)
    p = yund.yun("image", "import", str(outside), "--name", "outside", check=False)
    assert p.returncode == 1 and f"outside import_dirs ({x})" in p.stderr, p.stderr
    # a good one imports, boots from disk-less BIOS fine, and cannot be deleted while used
    yund.yun("image", "import", str(base), "--name", "blank")
    yund.yun("vm", "create", "e2e-blank", "--image", "blank", "--memory", "96M")
    p = yund.yun("image", "delete", "blank", check=False)
    assert p.returncode == 1 and "used by 1 vm" in p.stderr
    yund.yun("vm", "delete", "e2e-blank")
    yund.yun("image", "delete", "blank")
    # answered once the agent's image.remove is done: the directory is gone,
    # nothing left aside
    assert os.listdir(os.path.join(yund.state_dir, "images")) == []
    yund.check_invariants()


def test_numbers_out_of_range_are_refused(yund):
    """Each of these overflowed inside yund (signed overflow: the sanitizer
    build aborted); each is now a 400 that names the allowed range."""
    m = assert_error(yund.request("GET", "/v1/host/metrics?name=cpu&since=-9223372036854776"),
                     400, "invalid_argument")
    assert "since" in m
    for since in ("-99999999999999999999", "99999999999999999999", "-", "1e3"):
        assert_error(yund.request("GET", f"/v1/host/metrics?name=cpu&since={since}"), 400)
    assert_error(yund.request("GET", "/v1/host/metrics?name=cpu&step=99999999999999999999"), 400)
    st, r = yund.request("GET", "/v1/host/metrics?name=cpu&since=-3600&step=60")
    assert st == 200, r

    rule = {"name": "e2e-input-r", "metric": "cpu", "op": ">", "threshold": 1}
    for dur in ("9223372036854775807m", "99999999999999999h", "99999999999999999999", "31d"):
        m = assert_error(yund.request("POST", "/v1/alert-rules", dict(rule, **{"for": dur})), 400,
                         "invalid_argument")
        assert "for must be" in m
        assert_error(yund.request("POST", "/v1/alert-rules", dict(rule, window=dur)), 400)
        assert_error(yund.request("POST", "/v1/alert-rules", dict(rule, repeat=dur)), 400)
    st, r = yund.request("GET", "/v1/alert-rules")
    assert r["rules"] == []
    st, r = yund.request("POST", "/v1/alert-rules", dict(rule, **{"for": "30d"}))
    assert st == 201 and r["for"] == 30 * 86400, r
    for dur in ("99999999999999999h", "9223372036854775807m"):
        m = assert_error(yund.request("POST", "/v1/alert-rules/e2e-input-r/silence",
                                      {"for": dur}), 400, "invalid_argument")
        assert "duration" in m
    st, r = yund.request("GET", "/v1/alert-rules/e2e-input-r")
    assert r["silenced_until"] == 0, r
    st, r = yund.request("POST", "/v1/alert-rules/e2e-input-r/silence", {"for": "2h"})
    assert st == 200 and r["silenced_until"] > 0, r


def test_cli_numbers_out_of_range_are_refused(yund):
    for args in (("events", "-n", "4294967297"), ("events", "-n", "x"),
                 ("top", "-d", "4294967298"), ("top", "-n", "-1"),
                 ("vm", "exec", "ghost", "--timeout", "4294967356", "--", "true"),
                 ("alert", "rule", "add", "r", "--metric", "cpu", "--op", ">",
                  "--threshold", "inf")):
        p = yund.yun(*args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("yun: ") and p.stderr.count("\n") == 1, (args, p.stderr)
