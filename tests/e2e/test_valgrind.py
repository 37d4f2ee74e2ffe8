"""yund under valgrind: a full VM cycle and a SIGTERM shutdown with no memory
error and no definite leak. Uses the plain (non-sanitizer) build, since
valgrind and ASan cannot share a process."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, Yund, wait_for

PLAIN_YUND = os.path.join(ROOT, "build", "yund")


@pytest.mark.skipif(shutil.which("valgrind") is None or not os.path.exists(PLAIN_YUND),
                    reason="needs valgrind and the plain build (make all); .ci/run provides both")
def test_daemon_shutdown_is_valgrind_clean(state_dir):
    y = Yund(state_dir)
    log = os.path.join(state_dir, "valgrind.log")
    args = ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=99", f"--log-file={log}", PLAIN_YUND, "-s", state_dir]
    y.log = open(os.path.join(state_dir, "test-yund.log"), "ab")
    y.proc = subprocess.Popen(args, stdout=y.log, stderr=y.log)
    wait_for(lambda: y._healthy(), 60, what="yund under valgrind")
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-vg", "--image", "tiny", "--memory", "96M", "--start")
    y.yun("vm", "pause", "e2e-vg")
    y.yun("vm", "resume", "e2e-vg")
    y.yun("vm", "stop", "--force", "e2e-vg")
    y.yun("events")
    assert y.request("POST", "/v1/vms", raw="{bad")[0] == 400
    y.yun("vm", "delete", "e2e-vg")
    y.proc.terminate()
    rc = y.proc.wait(timeout=60)
    report = open(log).read()
    assert rc == 0, report
    assert "definitely lost" not in report and "Invalid" not in report, report
