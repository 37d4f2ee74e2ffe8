"""`yun sim` through the real CLI on the real PlanetLab day (../shared beside
the repository, as in CI): fidelity to CloudSim 3.0.3's published figures
for the policies the issue names, and clear errors for bad input."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, YUN

SHARED = os.environ.get("YUN_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
TRACE = os.path.join(SHARED, "traces", "planetlab", "20110303")

# CloudSim 3.0.3 on this day (design sketch): energy kWh, migrations, SLAV %
CLOUDSIM = {
    "thr-mmt-0.8": (198.08, 27728, 0.00357),
    "iqr-mmt-1.5": (193.63, 27592, 0.00342),
    "mad-mmt-2.5": (189.79, 27781, 0.00357),
    "lr-mmt-1.2": (167.83, 27649, 0.00432),
    "lr-mc-1.2": (153.87, 23351, 0.00703),
}


def sim(*args):
    return subprocess.run([YUN, "sim", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("policy", sorted(CLOUDSIM))
def test_matches_cloudsim(policy):
    assert os.path.isdir(TRACE), f"the PlanetLab traces are expected at {TRACE}"
    p = sim("run", "--trace", TRACE, "--policy", policy, "--compat", "cloudsim",
            "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    kwh, migs, slav = CLOUDSIM[policy]
    assert abs(r["energy_kwh"] / kwh - 1) <= 0.03, (policy, r["energy_kwh"], kwh)
    assert abs(r["migrations"] / migs - 1) <= 0.03, (policy, r["migrations"], migs)
    assert abs(r["slav"] * 100 / slav - 1) <= 0.10, (policy, r["slav"], slav)


def test_npa_is_exact():
    p = sim("run", "--trace", TRACE, "--policy", "npa", "--compat", "cloudsim", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert round(json.loads(p.stdout)["energy_kwh"], 2) == 2410.80


def test_bad_trace_names_file_and_line(tmp_path):
    (tmp_path / "vm1").write_text("10\n20\n")
    (tmp_path / "vm2").write_text("10\nabc\n")
    p = sim("run", "--trace", str(tmp_path), "--policy", "lr-mmt-1.2")
    assert p.returncode == 2
    assert "vm2:2" in p.stderr and p.stderr.count("\n") == 1
    p = sim("run", "--trace", str(tmp_path), "--policy", "warp-9")
    assert p.returncode == 2 and p.stderr.startswith("yun sim:")


def test_numbers_out_of_range_are_refused(tmp_path):
    # a CSV whose timestamps span more samples than any simulator holds
    # (a double converted to int out of range, then 10^9 steps and 4 GB)
    csv = tmp_path / "huge.csv"
    csv.write_text("vm1,0,10\nvm1,38888888888888888800,20\n")
    p = sim("run", "--csv", str(csv))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "samples per VM" in p.stderr and p.stderr.count("\n") == 1, p.stderr
    csv.write_text("vm1,0,10\nvm1,600,20\n")
    for opts in (("--interval", "inf"), ("--interval", "nan"), ("--duration", "1e300"),
                 ("--seed", "99999999999999999999"), ("--hosts", "1e3")):
        p = sim("run", "--csv", str(csv), *opts)
        assert p.returncode == 2, (opts, p.returncode, p.stderr)
        assert p.stderr.startswith("yun sim:") and p.stderr.count("\n") == 1, (opts, p.stderr)
    p = sim("run", "--synth", "10000000", "--steps", "1000000")
    assert p.returncode == 2 and "more samples" in p.stderr, p.stderr
    p = sim("run", "--csv", str(csv), "--format", "json")
    assert p.returncode == 0, p.stderr
