"""Capacity that counts what is true (issue 16, docs/architecture.md
"Memory policy"): above memory_overcommit 1 the committed sizes may pass the
host's memory, but the VMs' balloon floors (memory_min, else their whole
memory) plus memory_margin must fit the usable memory. A start that would
break that bound is refused with the numbers and changes nothing; a lower
memory_min lets it in. Placement (a create that starts, the dry run of POST
/v1/placement) applies the same bound. GET /v1/host shows both figures."""
import pytest

from conftest import Yund


@pytest.fixture
def small_host(state_dir):
    # 2 GiB as the host's size, 512 MiB reserved: 1536 MiB usable, overcommit
    # 4 (6 GiB committed), the margin 5 % of the usable memory (76 MiB)
    y = Yund(state_dir, ["--set", "host_memory=2G", "--set", "reserved_memory=512M",
                         "--set", "memory_overcommit=4", "--set", "balloon_policy=off"]).start()
    yield y
    y.stop()


def host(y):
    st, h = y.request("GET", "/v1/host")
    assert st == 200, h
    return h


def test_floors_bound_the_starts(small_host):
    y = small_host
    y.ensure_tiny()
    h = host(y)
    usable = 1536 << 20
    assert h["memory_floor_capacity"] == usable - usable // 20, h
    assert h["memory_floor_used"] == 0, h
    # 1 GiB without a minimum: its floor is all of it
    y.yun("vm", "create", "cap-a", "--image", "tiny", "--memory", "1G", "--start")
    y.yun("vm", "create", "cap-b", "--image", "tiny", "--memory", "512M", "--memory-min", "256M",
          "--start")
    h = host(y)
    assert h["memory_floor_used"] == (1024 + 256) << 20, h
    assert h["memory_used"] == (1024 + 512) << 20, h
    # 256 MiB more of floor passes 1536 - 76: refused, though 2 GiB committed
    # is far below 6 GiB
    y.yun("vm", "create", "cap-c", "--image", "tiny", "--memory", "512M", "--memory-min", "256M")
    p = y.yun("vm", "start", "cap-c", check=False)
    assert p.returncode != 0 and "memory_min" in p.stderr and "1280 MiB" in p.stderr, p.stderr
    assert y.vm("cap-c")["state"] == "stopped"
    assert host(y)["memory_floor_used"] == (1024 + 256) << 20
    # the API says the same: 409 with the numbers
    st, b = y.request("POST", "/v1/vms/cap-c/actions/start")
    assert st == 409 and b["error"]["code"] == "insufficient_capacity", (st, b)
    # placement counts the same floors: a create that starts at once is
    # refused before any row is written, and the dry run says why
    body = {"name": "cap-d", "image": "tiny", "memory": "512M", "memory_min": "256M",
            "start": True}
    st, b = y.request("POST", "/v1/placement?explain=1", body)
    assert st == 409 and b["error"]["code"] == "insufficient_capacity", (st, b)
    assert "free for its memory floor" in b["error"]["message"], b
    verdicts = b["placement"]["hosts"]
    assert verdicts[0]["filter"] == "memory-floor", verdicts
    assert "179 of 1459 MiB free for floors" in verdicts[0]["detail"], verdicts
    p = y.yun("vm", "create", "cap-d", "--image", "tiny", "--memory", "512M", "--memory-min",
              "256M", "--start", check=False)
    assert p.returncode != 0 and "memory floor" in p.stderr, p.stderr
    st, _ = y.request("GET", "/v1/vms/cap-d")
    assert st == 404
    body["memory_min"] = "128M"
    st, b = y.request("POST", "/v1/placement", body)
    assert st == 200, (st, b)
    # a lower floor fits
    y.yun("vm", "delete", "cap-c")
    y.yun("vm", "create", "cap-c", "--image", "tiny", "--memory", "512M", "--memory-min", "128M",
          "--start")
    assert host(y)["memory_floor_used"] == (1024 + 256 + 128) << 20
    for n in ("cap-a", "cap-b", "cap-c"):
        y.yun("vm", "delete", "--force", n)
    y.check_invariants()
