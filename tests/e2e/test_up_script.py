"""README's first command works as written on a fresh machine, as root (no
sudo there) or as a user: scripts/up.sh re-runs itself through sudo when
it is not root, and says in one line what to do when it can do neither.
The runs here stop at that decision (a stand-in sudo records its
arguments), so nothing is installed or started."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT

UP = os.path.join(ROOT, "scripts", "up.sh")
SETPRIV = shutil.which("setpriv")


def test_readme_first_command_needs_no_sudo():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = re.search(r"```sh\n(.*?)```", readme, re.S).group(1)
    first = block.splitlines()[0]
    assert first.startswith("./scripts/up.sh"), first


@pytest.fixture
def bin_dir():
    """A PATH with only the tools up.sh needs before its sudo decision, in a
    directory the unprivileged user can read."""
    d = tempfile.mkdtemp(prefix="yun-e2e-up-", dir="/tmp")
    os.chmod(d, 0o755)
    for tool in ("bash", "id", "readlink", "dirname", "env", "cat"):
        os.symlink(shutil.which(tool), os.path.join(d, tool))
    shutil.copy(UP, os.path.join(d, "up.sh"))
    os.chmod(os.path.join(d, "up.sh"), 0o755)
    yield d
    shutil.rmtree(d)


def as_nobody(bin_dir, *args):
    env = {"PATH": bin_dir, "HOME": "/nonexistent"}
    return subprocess.run([SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups",
                           os.path.join(bin_dir, "bash"), os.path.join(bin_dir, "up.sh"), *args],
                          capture_output=True, text=True, env=env, timeout=30, cwd="/")


def test_not_root_without_sudo_says_so_in_one_line(bin_dir):
    p = as_nobody(bin_dir)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("up.sh: run it as root, or install sudo"), p.stderr
    assert p.stderr.count("\n") == 1, p.stderr


def test_not_root_reruns_itself_through_sudo(bin_dir):
    record = os.path.join(bin_dir, "sudo-args")
    with open(os.path.join(bin_dir, "sudo"), "w") as f:
        f.write(f'#!{bin_dir}/bash\nfor a in "$@"; do echo "$a"; done > {record}\n')
    os.chmod(os.path.join(bin_dir, "sudo"), 0o755)
    os.chmod(bin_dir, 0o777)  # so the stand-in can write its record
    p = as_nobody(bin_dir, "myvm")
    assert p.returncode == 0, (p.stdout, p.stderr)
    with open(record) as f:
        args = f.read().splitlines()
    assert args == ["env", "YUN_STATE_DIR=/var/lib/yun", "YUN_UP_USER=nobody", "bash",
                    os.path.join(bin_dir, "up.sh"), "myvm"], args
