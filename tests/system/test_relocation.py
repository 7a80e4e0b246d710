# SPDX-License-Identifier: MIT
"""Relocation over real IP addresses: one ternd per lab host (a network
namespace each, scripts/ternlab.py through tests/system/netlab.py), the
relocation server bound to the host's lab address (on its bridge ternbr0) on
the default port 8002, hosts-allow by IP.

Skipped (with the reason) where network namespaces cannot be made."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import netlab
from conftest import ROOT, QmpClient
from netlab import Lab, require_netns
from toolstack import (TERN, assert_cli_error, domain_config_text, guest_uptime, pid_alive,
                       shell_answers, start_memstress, stop_memstress, time_limit, ts,
                       wait_for)  # noqa: F401 (fixture)

LAB_NET = r"^10\.213\.77\.[0-9]+$"
TERNLAB = ROOT / "scripts" / "ternlab.py"
PY = "/usr/bin/python3"


@pytest.fixture
def lab():
    require_netns()
    with Lab(3) as lab:
        yield lab


def listening(lab, host):
    """TCP listen sockets in host's namespace, as "ADDR:PORT" strings."""
    out = lab.run(host, ["ss", "-ltnH"]).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


# ---- the lab itself -----------------------------------------------------------------

def test_lab_builds_and_tears_down():
    require_netns()
    # A lab left half-built by a crashed run (its pid is gone) is cleaned
    # first, and so is one whose recorded owner is gone.
    dead = 4194000
    while os.path.exists(f"/proc/{dead}"):
        dead -= 1
    stale = [f"tern-{dead}-switch", f"tern-{dead}-h1"]
    for ns in stale:
        subprocess.run(["ip", "netns", "add", ns], check=True, timeout=20)
    orphan = f"orphan-{os.getpid()}"
    netlab.ternlab.up(orphan, 1, owner_pid=dead)
    prefix = f"tern-{os.getpid()}"
    lab = Lab(2, prefix=prefix)
    try:
        lab.open()
        names = set(netlab.list_netns())
        assert not names & set(stale), names
        assert not [n for n in names if n.startswith(orphan + "-")], names
        for h in ("h1", "h2", "client", "switch"):
            assert f"{prefix}-{h}" in names, names
        for h in ("h1", "h2", "client"):
            dev = lab.uplink(h)
            out = lab.run(h, ["ip", "-o", "-4", "addr", "show", "dev", dev]).stdout
            assert f"{lab.addr(h)}/24" in out, out
            assert ",UP" in lab.run(h, ["ip", "link", "show", "lo"]).stdout
        for h in ("h1", "h2"):
            # the host's uplink is a port of its bridge ternbr0
            out = lab.run(h, ["ip", "-o", "link", "show", "dev", "eth0"]).stdout
            assert "master ternbr0" in out, out
        # TCP between hosts and from the client, through the bridges
        server = lab.popen("h2", [sys.executable, "-c",
                                  "import socket\n"
                                  "s = socket.socket()\n"
                                  f"s.bind(('{lab.addr('h2')}', 8002))\n"
                                  "s.listen(4)\n"
                                  "for _ in range(2):\n"
                                  "    c, a = s.accept()\n"
                                  "    c.sendall(a[0].encode())\n"
                                  "    c.close()\n"])
        wait_for(lambda: f"{lab.addr('h2')}:8002" in listening(lab, "h2"), 10,
                 "the test server to listen")
        for h in ("h1", "client"):
            r = lab.run(h, [sys.executable, "-c",
                            "import socket\n"
                            f"s = socket.create_connection(('{lab.addr('h2')}', 8002), 5)\n"
                            "print(s.recv(100).decode())\n"])
            assert r.stdout.strip() == lab.addr(h), r
        server.wait(timeout=10)
    finally:
        lab.close()
        lab.close()                     # twice is fine
        for ns in stale:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        netlab.ternlab.down(orphan)
    assert not [n for n in netlab.list_netns() if n.startswith(prefix + "-")]


# ---- scripts/ternlab.py as a command -------------------------------------------

def ternlab(*args, timeout=120, env=None, script=TERNLAB, user=None):
    argv = [PY, str(script)] + [str(a) for a in args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def assert_lab_error(r, *words):
    """ternlab failed with one line "ternlab: error: ..." naming each word."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("ternlab: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def lab_namespaces(name):
    return sorted(n for n in netlab.list_netns() if n.startswith(name + "-"))


def test_ternlab_up_exec_status_down():
    require_netns()
    name = f"tl-{os.getpid()}"
    try:
        r = ternlab("up", "--hosts", "2", "--name", name)
        assert r.returncode == 0, r
        assert f"lab {name}: complete" in r.stdout, r.stdout
        assert lab_namespaces(name) == sorted(f"{name}-{h}" for h in
                                              ("h1", "h2", "client", "switch"))
        # made once: a second up refuses, --force recreates
        assert_lab_error(ternlab("up", "--name", name), f"lab {name} already exists",
                         "--force")
        # addresses: hosts on ternbr0 (eth0 is its port), the client on eth0
        for h, dev, addr in (("h1", "ternbr0", "10.213.77.1/24"),
                             ("h2", "ternbr0", "10.213.77.2/24"),
                             ("client", "eth0", "10.213.77.200/24")):
            r = ternlab("exec", "--name", name, h, "ip", "-o", "-4", "addr", "show", "dev", dev)
            assert r.returncode == 0 and addr in r.stdout, r
        r = ternlab("exec", "--name", name, "h2", "ip", "-o", "link", "show", "dev", "eth0")
        assert "master ternbr0" in r.stdout, r
        # nothing of the lab in the machine's own namespace
        r = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True,
                           timeout=20)
        assert "10.213.77." not in r.stdout, r.stdout
        # the client reaches h2 through the switch and h2's bridge; exec
        # passes the command's exit status on
        server = subprocess.Popen(
            [PY, str(TERNLAB), "exec", "--name", name, "h2", PY, "-c",
             "import socket\ns = socket.socket()\ns.bind(('10.213.77.2', 7007))\n"
             "s.listen(1)\nprint('listening', flush=True)\nc, a = s.accept()\n"
             "c.sendall(a[0].encode())\n"],
            stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            assert server.stdout.readline().strip() == "listening"
            r = ternlab("exec", "--name", name, "client", PY, "-c",
                        "import socket\n"
                        "s = socket.create_connection(('10.213.77.2', 7007), 5)\n"
                        "print(s.recv(100).decode())\n")
            assert r.returncode == 0 and r.stdout.strip() == "10.213.77.200", r
            assert server.wait(timeout=10) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert ternlab("exec", "--name", name, "h1", "sh", "-c", "exit 3").returncode == 3
        assert_lab_error(ternlab("exec", "--name", name, "h7", "true"), "no host h7")
        assert_lab_error(ternlab("exec", "--name", name, "h1"), "needs a command")

        r = ternlab("status", "--name", name, "--json")
        st = json.loads(r.stdout)
        assert len(st) == 1 and st[0]["complete"], st
        assert [h["host"] for h in st[0]["hosts"]] == ["h1", "h2", "client", "switch"]
        assert [h.get("address") for h in st[0]["hosts"]] == \
            ["10.213.77.1", "10.213.77.2", "10.213.77.200", None]
        assert name in ternlab("status").stdout

        r = ternlab("up", "--hosts", "3", "--name", name, "--force")
        assert r.returncode == 0, r
        assert f"{name}-h3" in lab_namespaces(name)
        # down kills what runs inside
        sleeper = subprocess.Popen([PY, str(TERNLAB), "exec", "--name", name, "h3",
                                    "sleep", "1000"], stdin=subprocess.DEVNULL)
        wait_for(lambda: sleeper.pid in netlab.netns_pids(f"{name}-h3"), 10,
                 "the sleeper in h3")
        r = ternlab("down", "--name", name)
        assert r.returncode == 0 and "removed 5 namespaces" in r.stdout, r
        assert sleeper.wait(timeout=10) != 0
        assert lab_namespaces(name) == []
        assert not os.path.exists(f"/run/ternlab/{name}")
        r = ternlab("down", "--name", name)         # twice is fine
        assert r.returncode == 0 and "nothing left to remove" in r.stdout, r
        r = ternlab("status", "--name", name)
        assert r.returncode == 1 and r.stdout.strip() == f"no lab {name}", r
    finally:
        ternlab("down", "--name", name)


def test_ternlab_down_cleans_after_a_crashed_creator():
    """What a creator killed half-way leaves: some namespaces, a process in
    one, a run directory without its record."""
    require_netns()
    name = f"tlc-{os.getpid()}"
    try:
        for h in ("switch", "h1"):
            subprocess.run(["ip", "netns", "add", f"{name}-{h}"], check=True, timeout=20)
        os.makedirs(f"/run/ternlab/{name}/h1/state")
        sleeper = subprocess.Popen(["ip", "netns", "exec", f"{name}-h1", "sleep", "1000"],
                                   stdin=subprocess.DEVNULL)
        wait_for(lambda: sleeper.pid in netlab.netns_pids(f"{name}-h1"), 10, "the sleeper")
        r = ternlab("status", "--name", name)
        assert r.returncode == 0 and "INCOMPLETE" in r.stdout, r
        assert_lab_error(ternlab("up", "--name", name), "already exists")
        r = ternlab("down", "--name", name)
        assert r.returncode == 0 and "removed 2 namespaces" in r.stdout, r
        assert sleeper.wait(timeout=10) != 0
        assert lab_namespaces(name) == [] and not os.path.exists(f"/run/ternlab/{name}")
    finally:
        ternlab("down", "--name", name)


def test_ternlab_errors_are_one_line():
    require_netns()
    # not root: a copy the unprivileged user can read
    d = tempfile.mkdtemp(prefix="tl-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        copy = os.path.join(d, "ternlab.py")
        shutil.copy(TERNLAB, copy)
        os.chmod(copy, 0o644)
        if shutil.which("setpriv"):
            assert_lab_error(ternlab("up", "--name", "x", script=copy, user=65534),
                             "needs root")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # no ip on PATH
    env = dict(os.environ, PATH="/nonexistent")
    assert_lab_error(ternlab("up", "--name", "noip", env=env), "no `ip` command")
    assert not os.path.exists("/run/ternlab/noip")
    assert_lab_error(ternlab("up", "--name", "bad/name"), "bad lab name")
    assert_lab_error(ternlab("up", "--name", "x", "--hosts", "0"), "--hosts must be 1 to 50")
    assert_lab_error(ternlab("down", "--name=.x"), "bad lab name")


def test_ternlab_with_ternd(guest, tmp_path):
    """--ternd: a ternd in every host with relocation on the host's address;
    a domain moves between them; down ends ternd and tern-vmm."""
    require_netns()
    name = f"tld-{os.getpid()}"
    try:
        r = ternlab("up", "--hosts", "2", "--name", name, "--ternd")
        assert r.returncode == 0, r
        pids = {}
        for i, h in ((1, "h1"), (2, "h2")):
            sock = f"/run/ternlab/{name}/{h}/ternd.sock"
            assert f"--socket {sock}" in r.stdout, r.stdout
            q = QmpClient(sock).negotiate()
            try:
                info = q.execute("info")["return"]
            finally:
                q.close()
            assert info["relocation"]["server"] is True, info
            assert info["relocation"]["address"] == f"10.213.77.{i}", info
            assert info["relocation"]["port"] == 8002, info
            assert info["relocation"]["hosts-allow"] == [LAB_NET], info
            with open(f"/run/ternlab/{name}/{h}/ternd.pid") as f:
                pids[h] = int(f.read())
            assert pid_alive(pids[h])
            assert pids[h] in netlab.netns_pids(f"{name}-{h}")
        cfg = tmp_path / "vm1.cfg"
        cfg.write_text(domain_config_text("vm1"))

        def tern(h, *args):
            return subprocess.run([str(TERN), "--socket", f"/run/ternlab/{name}/{h}/ternd.sock",
                                   *map(str, args)], capture_output=True, text=True,
                                  timeout=120, stdin=subprocess.DEVNULL)
        r = tern("h1", "create", cfg, "-p")
        assert r.returncode == 0, r
        r = tern("h1", "migrate", "vm1", "10.213.77.2")
        assert r.returncode == 0, r
        r = tern("h2", "--json", "list")
        doms = json.loads(r.stdout)
        assert [d["name"] for d in doms] == ["vm1"], doms
        q = QmpClient(f"/run/ternlab/{name}/h2/ternd.sock").negotiate()
        try:
            vmm = q.execute("query-domain", domain="vm1")["return"]["pid"]
        finally:
            q.close()
        assert pid_alive(vmm)
        r = ternlab("down", "--name", name)
        assert r.returncode == 0, r
        wait_for(lambda: not any(pid_alive(p) for p in [vmm, *pids.values()]), 10,
                 "ternd and tern-vmm to be gone")
        assert lab_namespaces(name) == [] and not os.path.exists(f"/run/ternlab/{name}")
    finally:
        ternlab("down", "--name", name)


# ---- relocation between hosts ----------------------------------------------------------

@time_limit(300)
def test_relocation_between_namespaces(lab, ts):
    h1 = ts.daemon("h1", lab=lab, host="h1", address=lab.addr("h1"), hosts_allow=LAB_NET,
                   timeout=10)
    # h2 takes migrations from h1 only
    h2 = ts.daemon("h2", lab=lab, host="h2", address=lab.addr("h2"),
                   hosts_allow=r"^10\.213\.77\.1$", timeout=10)
    h3 = ts.daemon("h3", lab=lab, host="h3", address=lab.addr("h3"), hosts_allow=LAB_NET,
                   timeout=10)
    for h in ("h1", "h2", "h3"):
        socks = listening(lab, h)
        assert f"{lab.addr(h)}:8002" in socks, (h, socks)
        assert not [s for s in socks if s.endswith(":8002") and s != f"{lab.addr(h)}:8002"], \
            (h, socks)

    _, con = ts.create(h1, "vm1")
    start_memstress(con)
    up = guest_uptime(con)
    r = h1.tern("migrate", "--live", "vm1", lab.addr("h2"), timeout=240)
    assert "vm1" in r.stdout, r.stdout
    h2.wait_state("vm1", "running", timeout=20)
    assert h1.domain("vm1") is None and h3.domain("vm1") is None
    con.close()
    con = h2.console("vm1")
    stop_memstress(con)
    assert guest_uptime(con) >= up
    q = h1.call("query-migrate", domain="vm1")["return"]
    assert q["status"] == "completed" and q["host"] == lab.addr("h2"), q

    # h3 is not in h2's hosts-allow: refused by its IP address
    h3.tern("create", ts.domcfg("vm3"), "-p")
    r = h3.tern("migrate", "vm3", lab.addr("h2"), check=False)
    assert_cli_error(r, f"relocation from {lab.addr('h3')} is not allowed",
                     "xend-relocation-hosts-allow")
    assert h3.domain("vm3")["state"] == "paused"
    assert h2.names() == ["vm1"] and len(h2.vmm_pids()) == 1

    # the relocation server listens on the lab address only: h2's loopback
    # has nothing on 8002
    r = h2.tern("migrate", "vm1", "127.0.0.1", check=False)
    assert_cli_error(r, "127.0.0.1:8002", "Connection refused")
    # an address in the lab where no host answers, and a name that does not
    # resolve (inside the namespace nothing leaves the machine)
    t0 = time.monotonic()
    r = h2.tern("migrate", "vm1", "10.213.77.99", check=False, timeout=120)
    assert_cli_error(r, "10.213.77.99")
    assert time.monotonic() - t0 < 60
    r = h2.tern("migrate", "vm1", "nohost.invalid", check=False, timeout=120)
    assert_cli_error(r, "nohost.invalid")
    h2.wait_state("vm1", "running", timeout=20)
    shell_answers(con)

    # and back to h1, which allows the whole lab
    start_memstress(con)
    h2.tern("migrate", "--live", "vm1", lab.addr("h1"), timeout=240)
    h1.wait_state("vm1", "running", timeout=20)
    assert h2.domain("vm1") is None and h2.vmm_pids() == []
    con.close()
    con = h1.console("vm1")
    stop_memstress(con)
