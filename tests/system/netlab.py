# SPDX-License-Identifier: MIT
"""The lab of hosts (scripts/ternlab.py) for system tests.

    with Lab(3) as lab:                 # h1, h2, h3 and a client
        lab.run("h1", ["ip", "addr"])
        p = lab.popen("h2", ["some-daemon"])
        lab.addr("h2")                  # "10.213.77.2"

The topology is scripts/ternlab.py's, the one implementation of the lab:
a switch namespace (PREFIX-switch) with a bridge, per host a namespace
(PREFIX-h1 ... PREFIX-hN) whose bridge ternbr0 holds the uplink eth0 and
the host's address SUBNET.K/24, and a client (PREFIX-client, SUBNET.200 on
eth0). Nothing is created in the machine's own network namespace.

PREFIX (the lab's name) is unique per test run ("tern-<pid>" by default).
Labs of an earlier run that crashed (named "tern-<pid>" with that pid gone,
or recorded with an owner that is gone), and any with this run's prefix, are
removed first. Teardown kills every process in the lab's namespaces and
deletes them, also after a failure; it is idempotent."""
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import ternlab  # noqa: E402

SUBNET = ternlab.SUBNET         # inside the lab's namespaces only
CLIENT_OCTET = ternlab.CLIENT_OCTET
BRIDGE = ternlab.BRIDGE
PREFIX_RE = re.compile(r"^tern-(\d+)$")

_netns_ok = None            # None: not probed yet; True; or the skip reason


def require_netns():
    """Skips the calling test (with the exact reason) unless this process can
    make network namespaces, veth pairs and a bridge."""
    global _netns_ok
    if _netns_ok is None:
        _netns_ok = ternlab.probe() or True
    if _netns_ok is not True:
        pytest.skip(_netns_ok)


def list_netns():
    return ternlab.list_netns()


def netns_pids(ns):
    return ternlab.netns_pids(ns)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def delete_netns(ns, timeout=10):
    """Kills every process in ns, then deletes it (missing is fine)."""
    if ns not in list_netns():
        return
    try:
        ternlab.kill_netns(ns, timeout=timeout)
    except ternlab.LabError as e:
        raise RuntimeError(str(e))
    r = ternlab.ip("netns", "del", ns, check=False)
    if r.returncode != 0 and ns in list_netns():
        raise RuntimeError(f"cannot delete namespace {ns}: {r.stderr.strip()}")


def cleanup_stale(prefix=None):
    """Removes the labs of test runs whose process is gone, and the lab with
    this prefix (a previous Lab of this same process that was not closed)."""
    for name in ternlab.labs():
        m = PREFIX_RE.match(name)
        stale = m is not None and not _pid_alive(int(m.group(1)))
        if not stale:
            st = ternlab.status_of(name)
            stale = st["stale"]
        if stale or name == prefix:
            ternlab.down(name)


class Lab:
    """n_hosts hosts (h1..hN) plus a client on one bridge."""

    def __init__(self, n_hosts=2, prefix=None, subnet=SUBNET):
        assert 1 <= n_hosts <= ternlab.MAX_HOSTS
        self.prefix = prefix or f"tern-{os.getpid()}"
        ternlab.check_name(self.prefix)
        self.subnet = subnet
        self.n_hosts = n_hosts
        self.hosts = [f"h{i}" for i in range(1, n_hosts + 1)]
        self.client = "client"
        self.switch = "switch"
        self.procs = []
        self.made = []          # namespaces created
        self.closed = False

    # ---- names and addresses ----------------------------------------------------
    def _role(self, host):
        host = "client" if host == "cl" else host
        assert host in self.hosts or host in (self.client, self.switch), host
        return host

    def ns(self, host):
        return ternlab.ns_name(self.prefix, self._role(host))

    def addr(self, host):
        return ternlab.host_addr(self._role(host), self.subnet)

    def uplink(self, host):
        """The interface that holds host's address: ternbr0 on hosts, eth0
        on the client."""
        return "eth0" if self._role(host) == self.client else BRIDGE

    # ---- life cycle ----------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self):
        require_netns()
        cleanup_stale(self.prefix)
        self.closed = False
        try:
            ternlab.up(self.prefix, self.n_hosts, force=True, subnet=self.subnet,
                       owner_pid=os.getpid())
            self.made = ternlab.lab_namespaces(self.prefix)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    try:
                        p.kill()
                    except ProcessLookupError:
                        pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            ternlab.down(self.prefix)
        except ternlab.LabError as e:
            raise RuntimeError(str(e))

    # ---- running things inside ---------------------------------------------------
    def wrap(self, host, argv):
        return ternlab.exec_argv(self.prefix, self._role(host), argv)

    def run(self, host, argv, check=True, timeout=30, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        r = subprocess.run(self.wrap(host, argv), timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{host}: `{' '.join(map(str, argv))}` exited "
                                 f"{r.returncode}: {r.stderr}")
        return r

    def popen(self, host, argv, **kw):
        """A process inside host's namespace, in its own session; killed
        (with its process group) at teardown."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(self.wrap(host, argv), **kw)
        self.procs.append(p)
        return p
