"""The cluster tests' fixtures: ONE cluster for the whole session (built on
the first cluster test, torn down at the end): a controller c1 and three
agents h1, h2, h3 (labels: h1 zone=a, h2 zone=b, h3 zone=b,gpu=1), in
network namespaces on a bridge, on a PostgreSQL database of its own, and the
tiny image built once for the tests that ask for it (`tiny`).

`cl` hands it to a test (`pool` keeps it) and, afterwards, puts it back as the next test
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


class _Pool:
    """The session's cluster; one that could not be put back (a daemon that
    crashes again at its restart) is torn down and a new one built for the
    next test, so one broken daemon fails its own test, not every later one."""

    def __init__(self):
        self.cluster = None

    def get(self):
        if self.cluster is None:
            self.cluster = harness.Cluster(AGENTS)
        return self.cluster

    def discard(self):
        """Tears the broken cluster down; returns what its daemons said."""
        c, self.cluster = self.cluster, None
        try:
            c.close(check=False)
        except Exception as e:  # reported with the failure that broke it
            return [f"closing it: {e!r}"] + c.problems
        return c.problems

    def close(self):
        if self.cluster:
            self.cluster.close()


@pytest.fixture(scope="session")
def pool(request):
    if os.getuid() != 0:
        pytest.skip("network namespaces need root")
    p = _Pool()
    request.addfinalizer(p.close)
    return p


@pytest.fixture
def tiny(cl):
    """The tiny image, built once per cluster (through the controller, on a host)."""
    if not getattr(cl, "tiny_image", None):
        cl.tiny_image = cl.ensure_tiny()
    return cl.tiny_image


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
def cl(pool):
    """The cluster, put back as found after the test (no image needed)."""
    netns.sweep_dead()
    cluster = pool.get()
    yield cluster
    try:
        left = _restore(cluster)
        cluster.settle(60)
        for name, h in cluster.hosts().items():
            assert h.get("state") == "up", (name, h)
    except BaseException as e:
        problems = pool.discard()
        raise AssertionError(f"the cluster could not be put back ({e}); it is rebuilt for the "
                             f"next test. Its daemons at their stop:\n" + "\n".join(problems)) from e
    # left by a test that failed anyway is no news; by one that passed, it is
    assert not left, f"the test left: {', '.join(left)}"
