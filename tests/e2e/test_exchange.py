"""Imports and exports reach only the directories the operator configured
(import_dirs, export_dirs; default <state_dir>/exchange): a path is judged
by whole components, opened without following a symlink out of its
directory, and a refusal creates nothing and says which directories are
allowed."""
import os
import shutil
import stat
import subprocess

from conftest import YUND, Yund


def qcow2(path, size="16M"):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)


def error(resp, status):
    st, b = resp
    assert st == status, (st, b)
    return b["error"]["message"]


def listing(*dirs):
    return {d: sorted(os.listdir(d)) for d in dirs}


def test_default_exchange_directory_confines_import_and_export(yund, tmp_path):
    y = yund
    exch = os.path.join(y.state_dir, "exchange")
    assert stat.S_IMODE(os.stat(exch).st_mode) == 0o700
    y.yun("volume", "create", "e2e-xch-v", "--size", "16M")
    st, vols0 = y.request("GET", "/v1/volumes")

    # export: outside the directory, nothing is written anywhere
    outside = tmp_path / "out"
    outside.mkdir()
    before = listing(outside, exch)
    for dest in (outside / "v.qcow2", "/etc/yun-e2e-xch.qcow2", f"{exch}-backups/v.qcow2",
                 f"{y.state_dir}/pools/default/x.qcow2", exch):
        m = error(y.request("POST", "/v1/volumes/e2e-xch-v/actions/export", {"path": str(dest)}),
                  400)
        assert f"outside export_dirs ({exch})" in m, m
    assert not os.path.exists("/etc/yun-e2e-xch.qcow2")
    m = error(y.request("POST", "/v1/volumes/e2e-xch-v/actions/export",
                        {"path": f"{exch}/../pools/default/x.qcow2"}), 400)
    assert ".." in m
    # a symlink in the exchange directory that leads out of it
    os.symlink(str(outside), os.path.join(exch, "sub"))
    os.symlink(str(outside / "direct.qcow2"), os.path.join(exch, "direct.qcow2"))
    m = error(y.request("POST", "/v1/volumes/e2e-xch-v/actions/export",
                        {"path": f"{exch}/sub/v.qcow2"}), 400)
    assert "symlink" in m and exch in m, m
    error(y.request("POST", "/v1/volumes/e2e-xch-v/actions/export",
                    {"path": f"{exch}/direct.qcow2"}), 409)  # the name is taken
    assert listing(outside) == {outside: []}
    # inside it, the export is made (and is root's alone)
    # (an export is a task: 202, then it succeeds)
    t = y.task_wait(y.request("POST", "/v1/volumes/e2e-xch-v/actions/export",
                              {"path": f"{exch}//v.qcow2", "format": "qcow2"}))
    assert t["state"] == "succeeded", t
    assert stat.S_IMODE(os.stat(os.path.join(exch, "v.qcow2")).st_mode) == 0o600
    assert not os.path.exists(os.path.join(exch, "v.qcow2.part"))

    # import: a root-only file outside, /etc/shadow, a symlink out, a FIFO
    secret = tmp_path / "secret.raw"
    secret.write_bytes(b"\0" * 4096)
    os.chmod(secret, 0o600)
    for src in (secret, "/etc/shadow", f"{exch}-backups/v.qcow2"):
        m = error(y.request("POST", "/v1/volumes", {"name": "e2e-xch-bad", "source": str(src)}),
                  400)
        assert f"outside import_dirs ({exch})" in m, m
        m = error(y.request("POST", "/v1/images/import", {"name": "e2e-xch-bad",
                                                          "file": str(src)}), 400)
        assert f"outside import_dirs ({exch})" in m, m
    qcow2(outside / "good.qcow2")
    os.symlink(str(outside / "good.qcow2"), os.path.join(exch, "out-link.qcow2"))
    os.symlink("/etc/shadow", os.path.join(exch, "shadow"))
    for src in ("out-link.qcow2", "shadow", "sub/good.qcow2"):
        for req in (("/v1/volumes", {"name": "e2e-xch-bad", "source": f"{exch}/{src}"}),
                    ("/v1/images/import", {"name": "e2e-xch-bad", "file": f"{exch}/{src}"})):
            m = error(y.request("POST", *req), 400)
            assert "symlink" in m and "import_dirs" in m, (src, m)
    os.mkfifo(os.path.join(exch, "fifo"))
    m = error(y.request("POST", "/v1/volumes", {"name": "e2e-xch-bad",
                                                "source": f"{exch}/fifo"}), 400)
    assert "not a regular file" in m
    # a symlink that stays inside is followed; the exported file comes back in
    os.symlink("v.qcow2", os.path.join(exch, "alias.qcow2"))
    y.yun("volume", "import", "e2e-xch-back", f"{exch}/alias.qcow2")
    # an image import is a task once the file is judged: 202, then it succeeds
    t = y.task_wait(y.request("POST", "/v1/images/import", {"name": "e2e-xch-img",
                                                            "file": f"{exch}/v.qcow2"}))
    assert t["state"] == "succeeded" and t["kind"] == "image.import", t
    assert t["result"]["name"] == "e2e-xch-img", t

    st, vols = y.request("GET", "/v1/volumes")
    assert sorted(v["name"] for v in vols["volumes"]) == ["e2e-xch-back", "e2e-xch-v"]
    st, imgs = y.request("GET", "/v1/images")
    assert [i["name"] for i in imgs["images"]] == ["e2e-xch-img"]
    assert listing(outside) == {outside: ["good.qcow2"]}
    y.check_invariants()


def test_configured_directories_are_judged_by_components(state_dir, tmp_path):
    # a sibling whose name starts with the state directory's is not inside it
    backups = state_dir + "-backups"
    os.mkdir(backups)
    try:
        y = Yund(state_dir, ["--set", f"export_dirs={backups}:{state_dir}/exchange",
                             "--set", f"import_dirs={backups}"]).start()
        try:
            y.yun("volume", "create", "e2e-xch-c", "--size", "16M")
            y.yun("volume", "export", "e2e-xch-c", f"{backups}/c.qcow2")
            y.yun("volume", "export", "e2e-xch-c", f"{state_dir}/exchange/c.qcow2")
            y.yun("volume", "import", "e2e-xch-c2", f"{backups}/c.qcow2")
            p = y.yun("volume", "import", "e2e-xch-c3", f"{state_dir}/exchange/c.qcow2",
                      check=False)
            assert p.returncode == 1 and f"outside import_dirs ({backups})" in p.stderr, p.stderr
            y.check_invariants()
        finally:
            y.stop()
    finally:
        shutil.rmtree(backups)
    # directories that would open yund's own state are refused at start-up
    for bad in (state_dir, os.path.dirname(state_dir), f"{state_dir}/pools", "relative/dir",
                f"{state_dir}/exchange/../pools"):
        p = subprocess.run([YUND, "-s", state_dir, "--set", f"export_dirs={bad}"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (bad, p.returncode, p.stderr)
        assert p.stderr.startswith("yund: export_dirs") and p.stderr.count("\n") == 1, p.stderr
