"""CPU models (issue 12, docs/architecture.md "CPU models"): a VM gets a
named QEMU CPU model fixed at create - the baseline of the hosts' models
(what each host's QEMU runs with its accelerator, from query-cpu-definitions)
unless it names its own - and QEMU runs with it. A model the host does not
run is refused by placement (409, nothing made), an unknown name is 400, a
host's cpu_models setting cuts its list, and a host that no longer runs a
VM's model refuses to start it (the agent's own check)."""
import os

from conftest import Yund

# sched/cpu_models.c's table, newest first (the test picks from it)
TABLE = ["GraniteRapids", "SapphireRapids", "Genoa", "Icelake-Server", "EPYC-Milan",
         "Cooperlake", "Cascadelake-Server", "EPYC-Rome", "Skylake-Server", "Skylake-Client",
         "EPYC", "Broadwell", "Broadwell-noTSX", "Haswell", "Haswell-noTSX", "IvyBridge",
         "SandyBridge", "Opteron_G5", "Opteron_G4", "Westmere", "Nehalem", "Opteron_G3", "Penryn",
         "Opteron_G2", "Conroe", "Opteron_G1", "qemu64", "kvm64"]


def local_models(y):
    st, hosts = y.request("GET", "/v1/hosts")
    assert st == 200, hosts
    local = [h for h in hosts["hosts"] if h["local"]]
    assert len(local) == 1, hosts
    return local[0]["cpu_models"].split(",") if local[0]["cpu_models"] else []


def qemu_cpu(y, name):
    with open(f"/proc/{y.vm(name)['pid']}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    return argv[argv.index(b"-cpu") + 1].decode()


def test_vms_get_the_baseline_or_their_own(state_dir):
    y = Yund(state_dir).start()
    try:
        y.ensure_tiny()
        models = local_models(y)
        # what this host's QEMU runs, in the table's order; under TCG this
        # machine runs Westmere and older
        assert models and all(m in TABLE + ["max", "host"] for m in models), models
        assert models == [m for m in TABLE + ["max", "host"] if m in models], models
        baseline = [m for m in models if m not in ("max", "host")][0]
        y.yun("vm", "create", "cpu-a", "--image", "tiny", "--memory", "96M", "--start")
        y.wait_marker("cpu-a")
        assert y.vm("cpu-a")["cpu_model"] == baseline
        assert qemu_cpu(y, "cpu-a") == baseline
        # its own, older model
        older = [m for m in models if m not in ("max", "host", baseline)][0]
        y.yun("vm", "create", "cpu-b", "--image", "tiny", "--memory", "96M", "--cpu-model",
              older, "--start")
        y.wait_marker("cpu-b")
        assert y.vm("cpu-b")["cpu_model"] == older and qemu_cpu(y, "cpu-b") == older
        # a model this host does not run: placement refuses, nothing made
        lacking = [m for m in TABLE if m not in models][0]
        p = y.yun("vm", "create", "cpu-c", "--image", "tiny", "--cpu-model", lacking,
                  check=False)
        assert p.returncode != 0 and f"without CPU model {lacking}" in p.stderr, p.stderr
        assert y.request("GET", "/v1/vms/cpu-c")[0] == 404
        st, b = y.request("POST", "/v1/placement?explain=1",
                          {"image": "tiny", "cpu_model": lacking})
        assert st == 409 and b["error"]["code"] == "conflict", (st, b)
        assert b["placement"]["hosts"][0]["filter"] == "cpu-model", b
        assert f"cannot run CPU model {lacking}" in b["placement"]["hosts"][0]["detail"], b
        # the dry run tells the model a VM would get
        st, b = y.request("POST", "/v1/placement", {"image": "tiny"})
        assert st == 200 and b["cpu_model"] == baseline, b
        # an unknown name: 400 with the known ones
        st, b = y.request("POST", "/v1/vms", {"name": "cpu-d", "image": "tiny",
                                              "cpu_model": "Pentium9000"})
        assert st == 400 and "Pentium9000" in b["error"]["message"] and \
            "Westmere" in b["error"]["message"], (st, b)
        st, b = y.request("POST", "/v1/vms", {"name": "cpu-d", "image": "tiny",
                                              "cpu_model": "a;b"})
        assert st == 400, (st, b)
        y.yun("vm", "stop", "--force", "cpu-b")
    finally:
        y.stop()

    # the host is cut to older models: the stopped VM's model is one it no
    # longer runs, and its own agent refuses the start (nothing runs)
    y = Yund(state_dir, ["--set", f"cpu_models={older},qemu64"]).start()
    try:
        assert local_models(y) == [older, "qemu64"]
        y.yun("vm", "stop", "--force", "cpu-a", check=False)
        p = y.yun("vm", "start", "cpu-a", check=False)
        assert p.returncode != 0 and f"cannot run CPU model {baseline}" in p.stderr, p.stderr
        assert y.vm("cpu-a")["state"] == "stopped" and not y.vm("cpu-a").get("pid")
        y.yun("vm", "start", "cpu-b")  # its model is still here
        y.wait_marker("cpu-b")
        # new VMs get the new baseline
        y.yun("vm", "create", "cpu-e", "--image", "tiny", "--memory", "96M")
        assert y.vm("cpu-e")["cpu_model"] == older
        for n in ("cpu-a", "cpu-b", "cpu-e"):
            y.yun("vm", "delete", "--force", n)
        y.check_invariants()
    finally:
        y.stop()


def test_cpu_model_settings(state_dir):
    # the default for new VMs is a setting; a bad setting stops yund at start
    y = Yund(state_dir, ["--set", "cpu_model=qemu64"]).start()
    try:
        y.ensure_tiny()
        y.yun("vm", "create", "set-a", "--image", "tiny", "--memory", "96M")
        assert y.vm("set-a")["cpu_model"] == "qemu64"
        y.yun("vm", "delete", "set-a")
    finally:
        y.stop()
    for kv, words in (("cpu_model=a b", "cpu_model"), ("cpu_models=Westmere,", "cpu_models")):
        bad = Yund(state_dir, ["--set", kv])
        try:
            bad.start()
            raise AssertionError(f"{kv} was taken")
        except AssertionError as e:
            assert "exited with 2" in str(e) and words in str(e), e
    assert os.path.isdir(state_dir)
