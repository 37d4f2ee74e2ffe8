"""A real Debian guest (debootstrap + cloud-init + qemu-guest-agent, built by
`yun image build debian` and cached beside the checkout) booted under TCG
with cloud-init user-data, an SSH key and a hostname; checked from inside
through the guest agent with `yun vm exec`."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, Yund, wait_for

CACHE = os.environ.get("YUN_IMAGE_CACHE",
                       os.path.join(os.path.dirname(ROOT), ".yun-image-cache"))


@pytest.fixture(scope="module")
def debian_yund(tmp_path_factory):
    import tempfile
    import shutil
    from conftest import _cleanup
    d = tempfile.mkdtemp(prefix="yun-e2e-", dir="/tmp")
    os.makedirs(CACHE, exist_ok=True)
    # a Debian guest under TCG on a busy machine can take longer than the
    # suite's 15 s to power off; these tests assert a clean power-off
    y = Yund(d, ["--set", f"image_cache={CACHE}", "--set", "sample_interval=2",
                 "--set", "stop_timeout=60"]).start()
    # the first build takes minutes (debootstrap); later ones come from the cache
    p = y.yun("image", "build", "debian", timeout=3600)
    assert "image debian ready" in p.stdout
    yield y
    y.stop()
    _cleanup(d)


@pytest.fixture(scope="module")
def deb_vm(debian_yund, tmp_path_factory):
    """One seeded Debian VM the module's guest tests share: a Debian boot
    under TCG is the slowest step of the suite, so it is booted once here
    (and again only where a test needs a reboot: the snapshot revert)."""
    y = debian_yund
    tmp = tmp_path_factory.mktemp("deb-seed")
    ud = tmp / "user-data"
    ud.write_text("#cloud-config\nwrite_files:\n  - path: /root/hello.txt\n"
                  "    content: hello from yun cloud-init\n")
    key = tmp / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt3c3RrZXlmb3J5dW50ZXN0c29ubHkxMjM0 e2e@yun\n")
    y.yun("vm", "create", "e2e-deb", "--image", "debian", "--cpus", "2", "--memory", "1024M",
          "--hostname", "yun-guest", "--user-data", str(ud), "--ssh-key", str(key), "--start")
    # the agent connects once the guest has booted
    wait_for(lambda: y.vm("e2e-deb").get("guest_agent"), 600, interval=2,
             what="the guest agent to come up")
    yield "e2e-deb"
    y.yun("vm", "delete", "--force", "e2e-deb", check=False)


def test_debian_cloud_init_and_guest_agent(debian_yund, deb_vm):
    y = debian_yund
    v = y.vm("e2e-deb")
    assert v["cloud_init"] is True and v["hostname"] == "yun-guest"

    def cloud_init_done():
        p = y.yun("vm", "exec", "e2e-deb", "--", "cat", "/root/hello.txt", check=False)
        return p if p.returncode == 0 else None

    p = wait_for(cloud_init_done, 600, interval=3, what="cloud-init's file")
    assert p.stdout.strip() == "hello from yun cloud-init"
    # the agent answers before cloud-init is done: wait for all its stages
    p = y.yun("vm", "exec", "e2e-deb", "--timeout", "600", "--", "cloud-init", "status", "--wait",
              timeout=700)
    assert "done" in p.stdout
    p = y.yun("vm", "exec", "e2e-deb", "--", "hostname")
    assert p.stdout.strip() == "yun-guest"
    p = y.yun("vm", "exec", "e2e-deb", "--", "cat", "/root/.ssh/authorized_keys", check=False)
    if p.returncode != 0:  # cloud-init puts keys for the default user on some images
        p = y.yun("vm", "exec", "e2e-deb", "--", "sh", "-c", "cat /home/*/.ssh/authorized_keys")
    assert "e2e@yun" in p.stdout
    # the command's exit status is yun's, like ssh
    assert y.yun("vm", "exec", "e2e-deb", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    # the guest facts are a cache refreshed in the background (at most every
    # 30 s when read): cloud-init renamed the host after the first refresh
    def facts():
        v = y.vm("e2e-deb")
        return v if v.get("guest_hostname") == "yun-guest" else None

    show = wait_for(facts, 180, interval=2, what="the cached guest facts to show the new hostname")
    assert "Debian" in show.get("guest_os", "") and show["guest_agent_answering"] is True
    assert isinstance(show.get("ip_addresses"), list) and show["guest_facts_at"] > 0
    y.check_invariants()


def test_exec_needs_an_agent_and_seed_input_is_checked(debian_yund, tmp_path):
    y = debian_yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-noagent", "--image", "tiny", "--memory", "96M", "--start")
    p = y.yun("vm", "exec", "e2e-noagent", "--", "true", check=False)
    assert p.returncode == 1 and "no guest agent" in p.stderr
    bad = tmp_path / "ud"
    bad.write_text("not cloud-config\n")
    p = y.yun("vm", "create", "e2e-bad", "--image", "tiny", "--user-data", str(bad), check=False)
    assert p.returncode == 1 and "user-data must start" in p.stderr
    st, b = y.request("POST", "/v1/vms", {"name": "e2e-bad", "image": "tiny",
                                          "hostname": "bad host!"})
    assert st == 400
    st, b = y.request("POST", "/v1/vms", {"name": "e2e-bad", "image": "tiny",
                                          "ssh_keys": ["not a key"]})
    assert st == 400 and "OpenSSH" in b["error"]["message"]
    y.yun("vm", "delete", "--force", "e2e-noagent")
    y.check_invariants()


def test_debian_volume_hotplug_and_snapshot_revert(debian_yund, deb_vm):
    """From inside a real guest: a hot-plugged volume is formatted, mounted
    and written, detached, attached again with its data intact; a live
    snapshot taken with the file systems frozen by the agent brings a file
    back after it was changed."""
    y = debian_yund
    if y.vm("e2e-deb")["state"] != "running":
        y.yun("vm", "start", "e2e-deb")
    wait_for(lambda: y.vm("e2e-deb").get("guest_agent"), 600, interval=2,
             what="the guest agent to come up")

    def sh(cmd, check=True, timeout=120):
        return y.yun("vm", "exec", "e2e-deb", "--timeout", str(timeout), "--", "sh", "-c", cmd,
                     check=check, timeout=timeout + 30)

    dev = "/dev/disk/by-id/virtio-e2e-data"
    y.yun("volume", "create", "e2e-data", "--size", "256M")
    y.yun("volume", "attach", "e2e-data", "e2e-deb")
    wait_for(lambda: sh(f"test -b {dev}", check=False).returncode == 0, 60, interval=1,
             what="the hot-plugged disk in the guest")
    sh(f"mkfs.ext4 -q {dev} && mkdir -p /mnt/data && mount {dev} /mnt/data && "
       "echo kept-across-detach > /mnt/data/proof && sync && umount /mnt/data")
    p = y.yun("volume", "detach", "e2e-data", timeout=120)
    assert "detached" in p.stdout
    assert sh(f"test -b {dev}", check=False).returncode != 0
    y.yun("volume", "attach", "e2e-data", "e2e-deb")
    wait_for(lambda: sh(f"test -b {dev}", check=False).returncode == 0, 60, interval=1,
             what="the re-attached disk in the guest")
    assert sh(f"mount {dev} /mnt/data && cat /mnt/data/proof").stdout.strip() == \
        "kept-across-detach"
    # online grow: the guest sees the new size without a reboot
    y.yun("volume", "resize", "e2e-data", "--size", "512M")
    assert int(sh(f"blockdev --getsize64 {dev}").stdout) == 512 << 20

    # live snapshot, application-consistent through fs-freeze
    sh("echo before > /root/state.txt && sync")
    y.yun("snapshot", "create", "e2e-deb", "s1")
    snap = json.loads(y.yun("-o", "json", "snapshot", "show", "e2e-deb", "s1").stdout)
    assert snap["consistency"] == "application"
    # the guest's file systems were thawed again: it can still write
    sh("echo after > /root/state.txt && sync")
    # stop goes through the agent and the guest powers off cleanly
    y.yun("vm", "stop", "e2e-deb", timeout=300)
    ev = [e for e in y.events("e2e-deb") if e["action"] == "stop"]
    assert "guest agent" in ev[-1]["reason"]
    assert y.vm("e2e-deb")["state"] == "stopped"
    y.yun("snapshot", "revert", "e2e-deb", "s1")
    y.yun("vm", "start", "e2e-deb")
    wait_for(lambda: y.vm("e2e-deb").get("guest_agent"), 600, interval=2,
             what="the guest agent after revert")
    assert sh("cat /root/state.txt").stdout.strip() == "before"
    # the volume came back with the VM (it is on the command line now)
    wait_for(lambda: sh(f"test -b {dev}", check=False).returncode == 0, 60, interval=1,
             what="the attached volume after restart")
    # delete merges the snapshot into the running disk (a QEMU block job)
    y.yun("snapshot", "delete", "e2e-deb", "s1")
    assert sh("cat /root/state.txt").stdout.strip() == "before"
    y.yun("vm", "stop", "e2e-deb", timeout=300)
    y.yun("vm", "delete", "e2e-deb")
    y.yun("volume", "delete", "e2e-data")
    y.check_invariants()
