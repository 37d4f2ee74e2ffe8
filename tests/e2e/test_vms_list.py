"""GET /v1/vms: paging (?limit=N&after=NAME, ordered by name, "next" while
more remain), its bad input (400), and a list that is never staler than the
change a client was told of (the per-row and whole-list caches)."""
import urllib.parse

from conftest import wait_for

NAMES = [f"e2e-l{i}" for i in (4, 0, 6, 2, 5, 1, 3)]  # created out of order


def listed(y, query=""):
    st, r = y.request("GET", "/v1/vms" + query)
    assert st == 200, r
    return r


def pages(y, limit):
    """Every page of ?limit=, following "next": the pages' names."""
    out, after = [], None
    while True:
        q = f"?limit={limit}" + (f"&after={urllib.parse.quote(after)}" if after else "")
        r = listed(y, q)
        assert len(r["vms"]) <= limit, r
        out.append([v["name"] for v in r["vms"]])
        if "next" not in r:
            return out
        assert r["next"] == r["vms"][-1]["name"], r
        after = r["next"]
        assert len(out) < 50, out  # next always moves on


def test_paging_walks_every_vm_in_name_order(yund):
    y = yund
    y.ensure_tiny()
    for n in NAMES:
        st, v = y.request("POST", "/v1/vms", {"name": n, "image": "tiny", "memory": "96M"})
        assert st == 201, v
    everything = listed(y)["vms"]
    names = [v["name"] for v in everything]
    assert names == sorted(NAMES)
    assert "next" not in listed(y)  # the whole list has no next

    ps = pages(y, 3)
    assert ps == [names[0:3], names[3:6], names[6:7]]
    assert [n for p in ps for n in p] == names
    # a page that ends exactly at the last row says no next
    assert pages(y, 7) == [names]
    assert pages(y, 1000) == [names]
    # the rows of a page are the rows of the whole list, field for field
    page = listed(y, "?limit=2&after=e2e-l2")
    assert [v["name"] for v in page["vms"]] == ["e2e-l3", "e2e-l4"]
    assert page["vms"] == [v for v in everything if v["name"] in ("e2e-l3", "e2e-l4")]
    assert page["next"] == "e2e-l4"
    # after a name that is not a VM: the rows that sort after it
    r = listed(y, "?limit=10&after=e2e-l2x")
    assert [v["name"] for v in r["vms"]] == ["e2e-l3", "e2e-l4", "e2e-l5", "e2e-l6"]
    assert "next" not in r
    r = listed(y, "?limit=5&after=zzz")
    assert r["vms"] == [] and "next" not in r
    # a page combines with ?host=
    host = everything[0]["host_id"]
    assert [v["name"] for v in listed(y, f"?limit=10&host={host}")["vms"]] == names


def test_paging_bad_input_is_400(yund):
    y = yund
    for q in ("?limit=0", "?limit=-1", "?limit=1001", "?limit=abc", "?limit=", "?limit=2x",
              "?limit=99999999999999999999", "?after=e2e-l1", "?limit=2&after=" + "a" * 64):
        st, r = y.request("GET", "/v1/vms" + q)
        assert st == 400, (q, st, r)
        assert r["error"]["code"] == "invalid_argument", (q, r)
        assert r["error"]["message"], (q, r)


def test_list_shows_every_acknowledged_change(yund):
    """Each change the API answered is in the very next list, whole or paged
    (the cached reply and the cached rows are never staler than that)."""
    y = yund
    y.ensure_tiny()
    st, v = y.request("POST", "/v1/vms", {"name": "e2e-lc", "image": "tiny", "memory": "96M"})
    assert st == 201, v
    before = listed(y)  # fills the caches
    assert [x["state"] for x in before["vms"] if x["name"] == "e2e-lc"] == ["stopped"]
    st, r = y.request("POST", "/v1/vms/e2e-lc/actions/start")
    assert st in (200, 202), r
    if st == 202:
        t = y.task_wait((st, r))
        assert t["state"] == "succeeded", t
    # never the state from before the start (it may have moved on since)
    for q in ("", "?limit=1", f"?host={v['host_id']}"):
        got = [x["state"] for x in listed(y, q)["vms"] if x["name"] == "e2e-lc"]
        assert got in (["starting"], ["running"]), (q, got)
    wait_for(lambda: y.vm("e2e-lc")["state"] == "running", 60, what="e2e-lc running")
    assert [x["state"] for x in listed(y)["vms"] if x["name"] == "e2e-lc"] == ["running"]
    st, r = y.request("POST", "/v1/vms", {"name": "e2e-ld", "image": "tiny", "memory": "96M"})
    assert st == 201, r
    assert {"e2e-lc", "e2e-ld"} <= {x["name"] for x in listed(y)["vms"]}
    assert listed(y, "?limit=1&after=e2e-lc")["vms"][0]["name"] == "e2e-ld"
    st, r = y.request("DELETE", "/v1/vms/e2e-ld")
    assert st in (200, 202, 204), r
    if st == 202:
        t = y.task_wait((st, r))
        assert t["state"] == "succeeded", t
    assert "e2e-ld" not in {x["name"] for x in listed(y)["vms"]}
    assert "e2e-ld" not in {x["name"] for x in listed(y, "?limit=10")["vms"]}
    st, r = y.request("POST", "/v1/vms/e2e-lc/actions/force-stop")
    assert st in (200, 202), r
    if st == 202:
        t = y.task_wait((st, r))
        assert t["state"] == "succeeded", t
    got = [x["state"] for x in listed(y)["vms"] if x["name"] == "e2e-lc"]
    assert got in (["stopping"], ["stopped"]), got
    wait_for(lambda: y.vm("e2e-lc")["state"] == "stopped", 60, what="e2e-lc stopped")
    for q in ("", "?limit=1"):
        assert [x["state"] for x in listed(y, q)["vms"] if x["name"] == "e2e-lc"] == ["stopped"]


def test_concurrent_lists_see_each_writers_change(yund):
    """Lists in flight while VMs are created and deleted (the full read runs
    on a thread and is shared by the requests waiting for it): every writer's
    next list shows its own change, and every list is a whole, valid one."""
    import threading

    y = yund
    y.ensure_tiny()
    errors, stop = [], threading.Event()

    def lister():
        while not stop.is_set():
            st, r = y.request("GET", "/v1/vms")
            if st != 200 or not isinstance(r, dict) or "vms" not in r:
                errors.append((st, r))

    def writer(i):
        name = f"e2e-lw{i}"
        st, r = y.request("POST", "/v1/vms", {"name": name, "image": "tiny", "memory": "96M"})
        if st != 201:
            errors.append(("create", st, r))
            return
        if name not in {x["name"] for x in listed(y)["vms"]}:
            errors.append(("not listed after create", name))
        st, r = y.request("DELETE", f"/v1/vms/{name}")
        if st == 202:
            st = 200 if y.task_wait((st, r))["state"] == "succeeded" else st
        if st not in (200, 204):
            errors.append(("delete", st, r))
            return
        if name in {x["name"] for x in listed(y)["vms"]}:
            errors.append(("listed after delete", name))

    listers = [threading.Thread(target=lister) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in listers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in listers:
        t.join()
    assert not errors, errors
