# SPDX-License-Identifier: MIT
"""The network across live migration, in a lab of hosts (network namespaces
on one L2 segment, scripts/ternlab.py): a VM with a virtio-net NIC on host
h1's bridge ternbr0 keeps its MAC, its IP address and its open TCP
connections when it moves to h2 and back, and a client that pings it every
10 ms loses at most a few packets.

Skipped (with the reason) where network namespaces cannot be made."""
import json
import time
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from netlab import Lab, require_netns
from toolstack import assert_cli_error, time_limit, ts  # noqa: F401 (fixture)

sys.path.insert(0, str(ROOT / "scripts"))
import demo  # noqa: E402  (the ping/TCP probe the demo uses)

LAB_NET = r"^10\.213\.77\.[0-9]+$"
GUEST_IP = "10.213.77.100"
GUEST_MAC = "aa:cc:00:00:00:01"
PY = "/usr/bin/python3"
PING_MS = 10


@pytest.fixture
def lab():
    require_netns()
    with Lab(2) as lab:
        yield lab


def daemons(ts, lab):
    return [ts.daemon(h, lab=lab, host=h, address=lab.addr(h), hosts_allow=LAB_NET,
                      timeout=10, memory=2048) for h in ("h1", "h2")]


def vif_line(bridge="ternbr0", mac=GUEST_MAC):
    return f"vif = [ 'mac={mac}, bridge={bridge}' ]\n"


def guest_net(con):
    """The guest's eth0 MAC and IPv4 address, read inside the guest."""
    mac = con.run("cat /sys/class/net/eth0/address", rb"([0-9a-f]{2}(:[0-9a-f]{2}){5})")
    ip = con.run("ip -o -4 addr show dev eth0", rb"inet (\d+\.\d+\.\d+\.\d+/\d+)")
    return mac.group(1).decode(), ip.group(1).decode()


def start_traffic(lab, seconds):
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ping = lab.popen("client", ["ping", "-D", "-n", "-i", str(PING_MS / 1000), GUEST_IP],
                     **pipes)
    probe = lab.popen("client", [PY, str(ROOT / "scripts" / "demo.py"), "--probe",
                                 GUEST_IP, str(demo.ECHO_PORT), str(seconds)], **pipes)
    return ping, probe


def stop_traffic(ping, probe):
    out, _ = probe.communicate(timeout=120)
    ping.send_signal(2)
    text, _ = ping.communicate(timeout=20)
    sent, got, gap = demo.ping_summary(text)
    tcp = json.loads(out.strip().splitlines()[-1])
    return sent, got, gap, tcp


def migrate_under_traffic(lab, src, dst, dst_host):
    """Live-migrates vm1 while the client pings and streams; returns what
    the client saw and the migration's downtime."""
    ping, probe = start_traffic(lab, 6)
    try:
        time.sleep(1.5)
        src.tern("migrate", "--live", "vm1", lab.addr(dst_host), timeout=240)
        dst.wait_state("vm1", "running", timeout=30)
        q = src.call("query-migrate", domain="vm1")["return"]
    finally:
        sent, got, gap, tcp = stop_traffic(ping, probe)
    print(f"{src.name}->{dst.name}: downtime {q.get('downtime')} ms; ping {sent} sent, "
          f"{got} received, {sent - got} lost, longest gap {gap * 1000:.0f} ms; "
          f"tcp {tcp}")
    return sent, got, gap, tcp, q


@time_limit(400)
def test_ping_and_tcp_survive_live_migration(lab, ts):
    h1, h2 = daemons(ts, lab)
    _, con = ts.create(h1, "vm1", extra=f"tern.ip={GUEST_IP}/24", more=vif_line())
    before = guest_net(con)
    assert before == (GUEST_MAC, f"{GUEST_IP}/24"), before
    vif = h1.query_domain("vm1")["vifs"][0]
    assert vif["mac"] == GUEST_MAC and vif["bridge"] == "ternbr0", vif
    r = lab.run("client", ["ping", "-c", "3", "-i", "0.2", "-W", "2", GUEST_IP],
                check=False)
    assert r.returncode == 0, r

    for src, dst, host in ((h1, h2, "h2"), (h2, h1, "h1")):     # A -> B -> A
        sent, got, gap, tcp, q = migrate_under_traffic(lab, src, dst, host)
        assert tcp["error"] is None, tcp
        assert tcp["received"] == tcp["sent"] > 0, tcp
        # The guest is stopped for `downtime` ms; then the announce moves
        # its MAC to the new port. Replies missing for that long, plus a few
        # in flight, are the bound.
        downtime = q.get("downtime", 0)
        bound = downtime // PING_MS + 10
        assert sent > 300 and sent - got <= bound, (sent, got, downtime)
        assert gap * 1000 <= downtime + 500, (gap, downtime)
        con.close()
        con = dst.console("vm1")
        assert guest_net(con) == before
        assert src.domain("vm1") is None and src.vmm_pids() == []
    # the MAC now sits on h1's vif port again (announce), not on the uplink
    fdb = lab.run("h1", ["bridge", "fdb", "show", "br", "ternbr0"]).stdout
    port = [l for l in fdb.splitlines() if l.startswith(GUEST_MAC)]
    assert port and "vif" in port[0], fdb


@time_limit(200)
def test_missing_bridge_refused_before_anything_moves(lab, ts):
    h1, h2 = daemons(ts, lab)
    lab.run("h1", ["ip", "link", "add", "xbr1", "type", "bridge"])
    lab.run("h1", ["ip", "link", "set", "xbr1", "up"])
    _, con = ts.create(h1, "vm1", more=vif_line(bridge="xbr1"))
    r = h1.tern("migrate", "--live", "vm1", lab.addr("h2"), check=False)
    assert_cli_error(r, "bridge xbr1 does not exist")
    assert h1.domain("vm1")["state"] == "running"
    assert h2.names() == [] and h2.vmm_pids() == []
    # and creating it where the bridge is missing says so too
    r = h2.tern("create", ts.domcfg("vm2", more=vif_line(bridge="xbr1",
                                                         mac="aa:cc:00:00:00:02")),
                check=False)
    assert_cli_error(r, "bridge xbr1 does not exist")
    assert re.search(r"running", h1.tern("list").stdout)
