"""The storage service's volumes in the default pool, on real files via
qemu-img: create, linked and full clones, grow, compact with the bytes it
reclaims, refusals that leave nothing behind, and a create interrupted by
kill -9 rolled back on restart."""
import os
import subprocess
import time

from conftest import YUN, Yund, wait_for


def pool_files(y):
    return sorted(os.listdir(os.path.join(y.state_dir, "pools", "default")))


def vol(y, name):
    st, v = y.request("GET", f"/v1/volumes/{name}")
    assert st == 200, v
    return v


def test_create_clone_resize_delete(yund):
    y = yund
    y.yun("volume", "create", "base", "--size", "1G")
    v = vol(y, "base")
    assert v["format"] == "qcow2" and v["virtual_size"] == 1 << 30 and v["state"] == "ready"
    assert os.path.exists(v["path"]) and v["actual_size"] < 1 << 20  # thin
    # put real data in it, then clone both ways
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", v["path"]],
                   check=True, capture_output=True)
    y.yun("volume", "clone", "base", "linked")
    y.yun("volume", "clone", "base", "copy", "--full")
    linked, copy = vol(y, "linked"), vol(y, "copy")
    assert linked["backing"] == "base" and copy["backing"] == ""
    assert linked["actual_size"] < 1 << 20 <= copy["actual_size"]  # linked is O(1)
    for path in (linked["path"], copy["path"]):
        out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x5a 0 8M", path],
                             capture_output=True, text=True)
        assert "Pattern verification failed" not in out.stdout and out.returncode == 0
    p = y.yun("volume", "delete", "base", check=False)
    assert p.returncode == 1 and "backs 1 linked clone" in p.stderr
    # grow; shrinking is refused
    y.yun("volume", "resize", "copy", "--size", "2G")
    assert vol(y, "copy")["virtual_size"] == 2 << 30
    info = subprocess.run(["qemu-img", "info", "--output=json", copy["path"]],
                          capture_output=True, text=True, check=True).stdout
    assert '"virtual-size": 2147483648' in info
    p = y.yun("volume", "resize", "copy", "--size", "1G", check=False)
    assert p.returncode == 1 and "only grow" in p.stderr
    pools = y.request("GET", "/v1/pools")[1]["pools"]
    assert pools[0]["name"] == "default" and pools[0]["volumes"] == 3
    assert pools[0]["allocation"] >= copy["actual_size"] and pools[0]["capacity"] > 0
    for name in ("linked", "copy", "base"):
        y.yun("volume", "delete", name)
    assert pool_files(y) == []
    assert y.request("GET", "/v1/volumes")[1]["volumes"] == []


def test_compact_reclaims_space(yund):
    y = yund
    # raw: data then zeros written over it, as a guest deleting files and
    # zeroing free space leaves it
    y.yun("volume", "create", "r", "--size", "64M", "--format", "raw")
    path = vol(y, "r")["path"]
    with open(path, "r+b") as f:
        f.write(b"\xab" * (32 << 20))
        f.seek(0)
        f.write(b"\0" * (32 << 20))
        os.fsync(f.fileno())
    before = os.stat(path).st_blocks * 512
    assert before >= 32 << 20
    out = y.yun("volume", "compact", "r", "-o", "json").stdout
    import json
    r = json.loads(out)
    assert r["before_bytes"] == before and r["reclaimed_bytes"] >= 30 << 20
    assert os.stat(path).st_blocks * 512 == r["after_bytes"] < 2 << 20
    # qcow2: clusters full of zeros are dropped too
    y.yun("volume", "create", "q", "--size", "64M")
    qpath = vol(y, "q")["path"]
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0 0 32M", qpath], check=True,
                   capture_output=True)
    p = y.yun("volume", "compact", "q")
    assert "reclaimed" in p.stdout
    assert os.stat(qpath).st_blocks * 512 < 2 << 20
    assert "compact" in [e["action"] for e in y.events("q")]


def test_bad_volume_requests_leave_nothing(yund):
    y = yund
    for body, code in ((({"name": "bad/name", "size": "1G"}), 400),
                       (({"name": "z", "size": 0}), 400),
                       (({"name": "z", "size": "1X"}), 400),
                       (({"name": "z", "size": "1G", "format": "vmdk"}), 400),
                       (({"name": "z", "size": "1G", "colour": 1}), 400),
                       (({"size": "1G"}), 400),
                       (({"name": "z", "size": "17T"}), 400)):
        st, b = y.request("POST", "/v1/volumes", body)
        assert st == code and b["error"]["message"], (body, st, b)
    assert y.request("POST", "/v1/volumes/ghost/actions/clone", {"name": "x"})[0] == 404
    assert y.request("POST", "/v1/volumes/ghost/actions/explode")[0] == 404
    assert y.request("DELETE", "/v1/volumes/ghost")[0] == 404
    y.yun("volume", "create", "dup", "--size", "1M")
    assert y.request("POST", "/v1/volumes", {"name": "dup", "size": "1M"})[0] == 409
    assert y.request("POST", "/v1/volumes/dup/actions/clone", {"name": "dup"})[0] == 409
    p = y.yun("volume", "create", "x", "--size", "lots", check=False)
    assert p.returncode == 2
    assert pool_files(y) == ["dup.qcow2"]


def test_kill9_mid_volume_create_rolls_back(state_dir):
    slow = os.path.join(state_dir, "slow-qemu-img")
    with open(slow, "w") as f:
        f.write('#!/bin/sh\ncase "$1" in create) sleep 3;; esac\nexec qemu-img "$@"\n')
    os.chmod(slow, 0o755)
    y = Yund(state_dir, ["--set", f"qemu_img={slow}"]).start()
    p = subprocess.Popen([YUN, "--socket", y.sock, "volume", "create", "half", "--size", "1G"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1)
    y.kill9()
    p.wait()
    time.sleep(3)  # the orphaned qemu-img finishes and leaves its file
    y2 = Yund(state_dir).start()
    assert y2.request("GET", "/v1/volumes/half")[0] == 404
    assert pool_files(y2) == []
    ev = [e for e in y2.events("half") if e["action"] == "create"]
    assert ev and "rolled back" in ev[-1]["reason"]
    y2.stop()


def test_volume_is_made_on_a_host(yund):
    """A volume names the host whose pool holds it (the all-in-one's own by
    default, or the one asked for); an unknown host is 404 and leaves nothing."""
    y = yund
    before = pool_files(y)
    st, r = y.request("POST", "/v1/volumes", {"name": "nowhere", "size": "1M", "host": "no-such"})
    assert st == 404 and "host 'no-such' does not exist" in r["error"]["message"], r
    st, r = y.request("POST", "/v1/volumes", {"name": "nowhere", "size": "1M", "host": 7})
    assert st == 400, r
    assert y.request("GET", "/v1/volumes/nowhere")[0] == 404 and pool_files(y) == before
    y.yun("volume", "create", "here", "--size", "1M")
    here = vol(y, "here")
    assert here["host"], here
    y.yun("volume", "create", "there", "--size", "1M", "--host", here["host"])
    there = vol(y, "there")
    assert there["host"] == here["host"] and there["host_id"] == here["host_id"]
    # the VM list names the same host
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-hostvm", "--image", "tiny", "--memory", "96M")
    vms = y.request("GET", "/v1/vms")[1]["vms"]
    assert [v["host"] for v in vms if v["name"] == "e2e-hostvm"] == [here["host"]]
    mine = y.request("GET", "/v1/vms?host=" + here["host"])[1]["vms"]
    assert [v["name"] for v in mine] == ["e2e-hostvm"]
    assert y.request("GET", "/v1/vms?host=no-such")[1]["vms"] == []
    assert "HOST" in y.yun("vm", "list").stdout.splitlines()[0]
    assert "e2e-hostvm" in y.yun("vm", "list", "--host", here["host"]).stdout
    assert "e2e-hostvm" not in y.yun("vm", "list", "--host", "no-such").stdout
