# SPDX-License-Identifier: MIT
"""A lab of "hosts" on one machine, made of network namespaces.

    with Lab(3) as lab:                 # h1, h2, h3 and a client
        lab.run("h1", ["ip", "addr"])
        p = lab.popen("h2", ["some-daemon"])
        lab.addr("h2")                  # "10.213.77.2"

Layout: one namespace per host (PREFIX-h1 ... PREFIX-hN) and one for a client
(PREFIX-cl), each with lo up and an eth0 whose other end is a port of the
bridge br0 inside a "switch" namespace (PREFIX-sw). Nothing is created in the
machine's own network namespace, so the lab never touches the host's
network. Addresses are SUBNET.1 ... SUBNET.N (hosts) and SUBNET.200
(client), /24, only inside those namespaces.

PREFIX is unique per test run ("tern-<pid>" by default). Namespaces of an
earlier run that crashed ("tern-<pid>-..." whose pid is gone), and any with
this run's prefix, are removed first. Teardown kills every process in the
lab's namespaces and deletes them, also after a failure; it is idempotent."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

SUBNET = "10.213.77"        # inside the lab's namespaces only
CLIENT_OCTET = 200
PREFIX_RE = re.compile(r"^tern-(\d+)-(h\d+|sw|cl)$")

_netns_ok = None            # None: not probed yet; True; or the skip reason


def _ip(*args, check=True, timeout=20):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed ({r.returncode}): "
                           f"{r.stderr.strip()}")
    return r


def require_netns():
    """Skips the calling test (with the exact reason) unless this process can
    make network namespaces, veth pairs and a bridge."""
    global _netns_ok
    if _netns_ok is None:
        _netns_ok = _probe()
    if _netns_ok is not True:
        pytest.skip(_netns_ok)


def _probe():
    if os.geteuid() != 0:
        return f"network namespaces need root (euid is {os.geteuid()})"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on PATH"
    name = f"tern-{os.getpid()}-probe"
    try:
        r = _ip("netns", "add", name, check=False)
        if r.returncode != 0:
            return f"`ip netns add {name}` failed: {r.stderr.strip()}"
        for args in (("link", "add", "tp0", "type", "veth", "peer", "name", "tp1"),
                     ("link", "add", "tpbr", "type", "bridge")):
            r = _ip("-n", name, *args, check=False)
            if r.returncode != 0:
                return f"`ip -n {name} {' '.join(args)}` failed: {r.stderr.strip()}"
        return True
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run ip: {e}"
    finally:
        _ip("netns", "del", name, check=False)


def list_netns():
    r = _ip("netns", "list", check=False)
    # "name (id: 3)" or just "name"
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_pids(ns):
    r = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def delete_netns(ns, timeout=10):
    """Kills every process in ns, then deletes it (missing is fine)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in netns_pids(ns) if p != os.getpid()]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if ns in list_netns():
        r = _ip("netns", "del", ns, check=False)
        if r.returncode != 0 and ns in list_netns():
            raise RuntimeError(f"cannot delete namespace {ns}: {r.stderr.strip()}")


def cleanup_stale(prefix=None):
    """Removes lab namespaces of runs whose process is gone, and those with
    this prefix (a previous Lab of this same process that was not closed)."""
    for ns in list_netns():
        m = PREFIX_RE.match(ns)
        stale = m is not None and not _pid_alive(int(m.group(1)))
        mine = prefix is not None and ns.startswith(prefix + "-")
        probe = re.match(r"^tern-(\d+)-probe$", ns)
        if probe and not _pid_alive(int(probe.group(1))):
            stale = True
        if stale or mine:
            delete_netns(ns)


class Lab:
    """n_hosts hosts (h1..hN) plus a client (cl) on one bridge."""

    def __init__(self, n_hosts=2, prefix=None, subnet=SUBNET):
        assert 1 <= n_hosts <= 50
        self.prefix = prefix or f"tern-{os.getpid()}"
        assert re.match(r"^[A-Za-z0-9_.-]{1,20}$", self.prefix), self.prefix
        self.subnet = subnet
        self.hosts = [f"h{i}" for i in range(1, n_hosts + 1)]
        self.client = "cl"
        self.switch = "sw"
        self.procs = []
        self.made = []          # namespaces created, in order
        self.closed = False

    # ---- names and addresses ----------------------------------------------------
    def ns(self, host):
        assert host in self.hosts or host in (self.client, self.switch), host
        return f"{self.prefix}-{host}"

    def addr(self, host):
        if host == self.client:
            return f"{self.subnet}.{CLIENT_OCTET}"
        assert host in self.hosts, host
        return f"{self.subnet}.{int(host[1:])}"

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
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _add_ns(self, host):
        ns = self.ns(host)
        _ip("netns", "add", ns)
        self.made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _build(self):
        sw = self._add_ns(self.switch)
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for host in self.hosts + [self.client]:
            ns = self._add_ns(host)
            # The port keeps the host's name inside the switch; the host
            # sees an ordinary eth0.
            _ip("-n", sw, "link", "add", host, "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            _ip("-n", sw, "link", "set", host, "master", "br0")
            _ip("-n", sw, "link", "set", host, "up")
            _ip("-n", ns, "addr", "add", f"{self.addr(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

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
        errors = []
        # Hosts first, the switch last (its veth ends go with the hosts).
        for ns in reversed(self.made):
            try:
                delete_netns(ns)
            except RuntimeError as e:
                errors.append(str(e))
        # Whatever else carries our prefix (e.g. made by a half-built lab).
        for ns in list_netns():
            if ns.startswith(self.prefix + "-"):
                try:
                    delete_netns(ns)
                except RuntimeError as e:
                    errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))

    # ---- running things inside ---------------------------------------------------
    def wrap(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host)] + [str(a) for a in argv]

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
