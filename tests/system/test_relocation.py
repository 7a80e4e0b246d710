# SPDX-License-Identifier: MIT
"""Relocation over real IP addresses: one ternd per lab host (a network
namespace each, tests/system/netlab.py), the relocation server bound to the
host's lab address on the default port 8002, hosts-allow by IP.

Skipped (with the reason) where network namespaces cannot be made."""
import os
import subprocess
import sys
import time

import pytest

import netlab
from netlab import Lab, require_netns
from toolstack import (assert_cli_error, guest_uptime, shell_answers, start_memstress,
                       stop_memstress, time_limit, ts, wait_for)  # noqa: F401 (fixture)

LAB_NET = r"^10\.213\.77\.[0-9]+$"


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
    # A namespace left by a crashed run (its pid is gone) is cleaned first.
    dead = 4194000
    while os.path.exists(f"/proc/{dead}"):
        dead -= 1
    stale = f"tern-{dead}-h1"
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=20)
    prefix = f"tern-{os.getpid()}"
    lab = Lab(2, prefix=prefix)
    try:
        lab.open()
        assert stale not in netlab.list_netns()
        names = set(netlab.list_netns())
        for h in ("h1", "h2", "cl", "sw"):
            assert f"{prefix}-{h}" in names, names
        for h in ("h1", "h2", "cl"):
            out = lab.run(h, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
            assert f"{lab.addr(h)}/24" in out, out
            assert ",UP" in lab.run(h, ["ip", "link", "show", "lo"]).stdout
        # TCP between hosts and from the client, through the bridge
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
        for h in ("h1", "cl"):
            r = lab.run(h, [sys.executable, "-c",
                            "import socket\n"
                            f"s = socket.create_connection(('{lab.addr('h2')}', 8002), 5)\n"
                            "print(s.recv(100).decode())\n"])
            assert r.stdout.strip() == lab.addr(h), r
        server.wait(timeout=10)
    finally:
        lab.close()
        lab.close()                     # twice is fine
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, timeout=20)
    assert not [n for n in netlab.list_netns() if n.startswith(prefix + "-")]


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
