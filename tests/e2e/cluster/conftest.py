"""The cluster tests' fixtures: ONE cluster for the whole session (built on
the first cluster test, torn down at the end): a controller c1 and three
agents h1, h2, h3 (labels: h1 zone=a, h2 zone=b, h3 zone=b,gpu=1), in
network namespaces on a bridge, on a PostgreSQL database of its own, and the
tiny image built once for the tests that ask for it (`tiny`).

`cl` hands it to a test and, afterwards, puts it back as the next test
expects it and checks that it is: every link up, every daemon running, every
host up, one leader, no VM left (the fixture deletes the test's), the invariants
settled on every host. A test that left a mess fails in its teardown, naming
what it left; the next test still starts from a clean cluster.
"""
import os

import pytest

from . import harness
from . import netns

AGENTS = {"h1": "zone=a", "h2": "zone=b", "h3": "zone=b,gpu=1"}

if not harness.PG_URL:
    pytestmark = pytest.mark.skip(reason="YUN_TEST_PG_URL is not set")


@pytest.fixture(scope="session")
def cluster(request):
    if os.getuid() != 0:
        pytest.skip("network namespaces need root")
    c = harness.Cluster(AGENTS)
    request.addfinalizer(c.close)
    return c


@pytest.fixture(scope="session")
def tiny(cluster):
    """The tiny image, built once (through the controller, on a host)."""
    return cluster.ensure_tiny()


def _restore(c):
    """Puts the cluster back as it was; returns what the test had left."""
    left = []
    for name in sorted(c.fabric.cut_links):
        left.append(f"link of {name} cut")
        c.fabric.restore(name)
    for d in c.controllers:
        if not d.running():
            left.append(f"controller {d.name} not running")
            d.start()
    c.wait_leader()
    for name, a in c.agents.items():
        if not a.running():
            left.append(f"agent {name} not running")
            a.start(wait_up=False)
    for name, a in c.agents.items():
        c.wait_host(name, "up", 40, daemon=a)
    c.delete_all_vms()  # a test's VMs are the fixture's to delete
    return left


@pytest.fixture
def cl(cluster):
    """The cluster, put back as found after the test (no image needed)."""
    netns.sweep_dead()
    yield cluster
    left = _restore(cluster)
    cluster.settle(60)
    for name, h in cluster.hosts().items():
        assert h.get("state") == "up", (name, h)
    # left by a test that failed anyway is no news; by one that passed, it is
    assert not left, f"the test left: {', '.join(left)}"

