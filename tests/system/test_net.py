# SPDX-License-Identifier: MIT
"""virtio-net on TAP interfaces, with the real guest, on host h1 of a
one-host lab (tests/system/netlab.py: network namespaces this test makes and
deletes, with every process in them):

    namespace of h1:  bridge ternbr0 (10.213.77.1/24, uplink eth0)
                         |-- TAP of tern-vmm (guest 10.213.77.100)
                         |-- TAP of a second tern-vmm (migration)

Covered: --net option errors (one line each; nothing left behind), the
guest's eth0 with the configured MAC, ping, TCP transfers both ways
verified by SHA-256, an existing TAP (tap=) with the default MAC derived
from --name, the TAP gone when tern-vmm is, and a live migration between
two tern-vmm on the same bridge while the namespace pings the guest every
10 ms: at most a few replies are lost, a TCP stream into the guest keeps
going, and afterwards the bridge's forwarding table has the guest's MAC
on the destination's TAP (the announcement after the move).

Pings and TCP on the host side are small Python programs run inside h1's
namespace (raw ICMP socket: no ping binary needed). Skipped, with the
reason, where network namespaces cannot be made."""
import json
import os
import re
import shutil
import subprocess
import time

import pexpect
import pexpect.popen_spawn
import pytest

from conftest import CMD_TIMEOUT, VMM, QmpClient, Vm, assert_one_line_error, run_vmm
from netlab import BRIDGE, SUBNET, Lab, require_netns, ternlab
from test_migrate import assert_handed_over, wait_migration, wait_running

HOST = "h1"                 # the lab host whose bridge the VMs' TAPs join
GUEST_IP = f"{SUBNET}.{ternlab.GUEST_FIRST_OCTET}"
MAC = "52:54:00:5e:ed:01"
APPEND = f"console=ttyS0 tern.ip={GUEST_IP}/24"
PY = "/usr/bin/python3"

# ICMP echo every INTERVAL seconds until stdin closes, then one more second
# for late replies; prints a JSON summary (lost replies, longest gap).
PINGER = r"""
import json, os, select, socket, struct, sys, time
dst, interval = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff
sent, got = {}, {}
seq, nxt, stop_at = 0, time.monotonic(), None
print("started", flush=True)
while True:
    now = time.monotonic()
    if stop_at is None and now >= nxt:
        body = bytes(56)
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xffff)
        pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, seq & 0xffff) + body
        try:
            s.sendto(pkt, (dst, 0))
        except OSError:
            pass
        sent[seq & 0xffff] = now
        seq += 1
        nxt = max(nxt + interval, now)
    if stop_at is not None and now > stop_at + 1.0:
        break
    wait = max(0.0, (nxt if stop_at is None else stop_at + 1.0) - now)
    r, _, _ = select.select([s, sys.stdin], [], [], wait)
    if s in r:
        data = s.recv(4096)
        ihl = (data[0] & 15) * 4
        t, _, _, i, q = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if t == 0 and i == ident and q in sent and q not in got:
            got[q] = time.monotonic()
    if sys.stdin in r and stop_at is None and not os.read(0, 100):
        stop_at = time.monotonic()
times = sorted(got.values())
gaps = [b - a for a, b in zip(times, times[1:])]
print(json.dumps({"sent": len(sent), "received": len(got),
                  "lost": len(set(sent) - set(got)),
                  "max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None}),
      flush=True)
"""

# send HOST PORT BYTES SEED [CHUNK PAUSE]: connects (retrying), sends
# pseudo-random bytes (CHUNK at a time, PAUSE seconds apart), half-closes,
# waits for the peer to close. recv PORT BYTES: accepts one connection,
# reads BYTES. Both print a JSON line with the SHA-256 and the time.
TCPTOOL = r"""
import hashlib, json, random, socket, sys, time
if sys.argv[1] == "send":
    host, port, n, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    chunk = int(sys.argv[6]) if len(sys.argv) > 6 else n
    pause = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    data = random.Random(seed).randbytes(n)
    deadline = time.monotonic() + 60
    while True:
        try:
            c = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    c.settimeout(120)
    print("connected", flush=True)
    t0 = time.monotonic()
    for off in range(0, n, chunk):
        c.sendall(data[off:off + chunk])
        if pause:
            time.sleep(pause)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    print(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "bytes": n,
                      "seconds": time.monotonic() - t0}), flush=True)
else:
    port, n = int(sys.argv[2]), int(sys.argv[3])
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(1)
    l.settimeout(120)
    print("listening", flush=True)
    c, _ = l.accept()
    c.settimeout(120)
    h, got, t0 = hashlib.sha256(), 0, None
    while got < n:
        b = c.recv(min(1 << 20, n - got))
        if not b:
            break
        if t0 is None:
            t0 = time.monotonic()
        h.update(b)
        got += len(b)
    c.close()
    print(json.dumps({"sha256": h.hexdigest(), "bytes": got,
                      "seconds": time.monotonic() - t0 if t0 else 0.0}), flush=True)
"""

# Counts, on interface argv[1], the RARP broadcasts from MAC argv[2] and its
# gratuitous ARPs (sender IP = target IP = argv[3]) until stdin closes.
SNIFFER = r"""
import json, os, select, socket, sys
ifname, mac, ip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
counts = {"rarp": 0, "garp": 0}
print("started", flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if s in r:
        f = s.recv(4096)
        if len(f) >= 42 and f[6:12] == mac:
            if f[12:14] == b"\x80\x35":
                counts["rarp"] += 1
            elif f[12:14] == b"\x08\x06" and f[28:32] == ip and f[38:42] == ip:
                counts["garp"] += 1
    if sys.stdin in r and not os.read(0, 100):
        break
print(json.dumps(counts), flush=True)
"""


# ---- the namespace ----------------------------------------------------------------

class HostNs:
    """Lab host HOST's namespace, as the tests use it."""

    def __init__(self, lab):
        self.lab = lab
        self.addr = lab.addr(HOST)

    def wrap(self, argv):
        return self.lab.wrap(HOST, argv)

    def run(self, argv, timeout=60, check=True):
        return self.lab.run(HOST, argv, check=check, timeout=timeout)

    def popen(self, argv, **kw):
        """Killed with the lab; its output on a text pipe."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("text", True)
        return self.lab.popen(HOST, argv, **kw)

    def links(self):
        out = self.run(["ip", "-o", "link", "show"]).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def fdb(self):
        return self.run(["bridge", "fdb", "show", "br", BRIDGE]).stdout


@pytest.fixture
def netns():
    require_netns()
    if shutil.which("bridge") is None:
        pytest.skip("no `bridge` command (iproute2) on PATH")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/net/tun")
    with Lab(1) as lab:
        yield HostNs(lab)


class NsVm(Vm):
    """conftest.Vm with its tern-vmm inside the namespace: only the command
    line differs (Vm.__init__ spawns tern-vmm itself)."""

    def __init__(self, ns, args, logfile):
        self.args = ns.wrap([VMM, *args])
        self.log = open(logfile, "wb")
        self.child = pexpect.popen_spawn.PopenSpawn(
            self.args, timeout=CMD_TIMEOUT, logfile=self.log, preexec_fn=os.setsid)
        self.proc = self.child.proc


@pytest.fixture
def nsvms(netns, workdir, guest, request):
    started = []

    def start(*args):
        vm = NsVm(netns, args, workdir / f"console-{len(started)}.log")
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for i, _ in enumerate(started):
            log = workdir / f"console-{i}.log"
            print(f"--- console {i} ---\n" + log.read_text(errors="replace")[-4000:])


# ---- helpers ------------------------------------------------------------------------

def guest_mac(vm):
    m = vm.run('echo "mac=$(cat /sys/class/net/eth0/address)"', r"mac=([0-9a-f:]{17})\r?\n")
    return m.group(1).decode()


def start_pinger(netns, interval=0.01):
    p = netns.popen([PY, "-c", PINGER, GUEST_IP, str(interval)], stdin=subprocess.PIPE)
    assert p.stdout.readline().strip() == "started"
    return p


def stop_pinger(p):
    p.stdin.close()
    line = p.stdout.readline()
    p.wait(timeout=30)
    assert line, "the pinger printed no summary"
    return json.loads(line)


def ping(netns, count=20, interval=0.01):
    p = start_pinger(netns, interval)
    time.sleep(count * interval)
    return stop_pinger(p)


def wait_guest_reachable(netns, timeout=30):
    """The first ping answered (ARP resolved, eth0 up)."""
    deadline = time.monotonic() + timeout
    while True:
        res = ping(netns, count=10, interval=0.05)
        if res["received"]:
            return
        assert time.monotonic() < deadline, f"the guest never answered: {res}"


def host_to_guest(netns, vm, nbytes, port=5001, seed=7, chunk=None, pause=0.0,
                  during=None):
    """Sends nbytes from the namespace into the guest (busybox nc -l);
    returns the sender's summary. The guest's SHA-256 must match."""
    vm.child.sendline(f'nc -l -p {port} > /tmp/rx; echo "rx=$(sha256sum /tmp/rx | '
                      f'cut -d\' \' -f1) n=$(wc -c < /tmp/rx)"')
    argv = [PY, "-c", TCPTOOL, "send", GUEST_IP, port, nbytes, seed]
    if chunk:
        argv += [chunk, pause]
    p = netns.popen(argv)
    assert p.stdout.readline().strip() == "connected"
    if during:
        during()
    line = p.stdout.readline()
    p.wait(timeout=60)
    assert line, "the sender printed no summary"
    sent = json.loads(line)
    return sent, p


def expect_guest_rx(vm, sent, nbytes):
    vm.expect(r"rx=([0-9a-f]{64}) n=(\d+)", timeout=120)
    assert int(vm.child.match.group(2)) == nbytes
    assert vm.child.match.group(1).decode() == sent["sha256"]


def guest_to_host(netns, vm, nbytes, port=5002):
    """Sends nbytes of random data from the guest to a listener in the
    namespace; returns the listener's summary, checked against the guest's
    SHA-256 of the data."""
    count = nbytes // 65536
    m = vm.run(f"dd if=/dev/urandom of=/tmp/blob bs=64k count={count} 2>/dev/null; "
               "echo \"tx=$(sha256sum /tmp/blob | cut -d' ' -f1)\"",
               r"tx=([0-9a-f]{64})", timeout=120)
    want = m.group(1).decode()
    p = netns.popen([PY, "-c", TCPTOOL, "recv", port, count * 65536])
    assert p.stdout.readline().strip() == "listening"
    vm.child.sendline(f'nc {netns.addr} {port} < /tmp/blob; echo "ncdone=$?"')
    line = p.stdout.readline()
    p.wait(timeout=60)
    got = json.loads(line)
    vm.expect(r"ncdone=\d+", timeout=60)
    assert got["bytes"] == count * 65536, got
    assert got["sha256"] == want
    return got


def default_mac(name, index=0):
    """The documented default with --name: 52:54:00 + FNV-1a-32(name) + index."""
    h = 2166136261
    for ch in name.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
    low = (h + index) & 0xffffff
    return "52:54:00:%02x:%02x:%02x" % (low >> 16, (low >> 8) & 0xff, low & 0xff)


def assert_one_line(r, *words, status):
    assert r.returncode == status, r
    assert_one_line_error(r, *words)


# ---- tests --------------------------------------------------------------------------

def test_net_options_refused(guest):
    """Bad --net options: status 2, one line naming the problem."""
    k = ["--kernel", guest["kernel"], "--initrd", guest["initrd"]]
    for arg, words in [
        ("bridge=br0,mac=01:00:5e:00:00:01", ["01:00:5e:00:00:01", "not a unicast"]),
        ("bridge=br0,mac=00:00:00:00:00:00", ["not a unicast"]),
        ("bridge=br0,mac=52:54:00:zz:00:01", ["invalid MAC address"]),
        ("br0", ["not KEY=VALUE"]),
        ("bridge=br0,colour=red", ["unknown key 'colour'"]),
        ("bridge=br0,tap=tap0", ["exactly one of bridge=BR and tap=NAME"]),
        ("mac=52:54:00:00:00:01", ["exactly one of"]),
        ("tap=tap0,ifname=x", ["ifname= goes with bridge="]),
        ("bridge=br0,bridge=br1", ["'bridge' given twice"]),
        ("bridge=a/b", ["invalid bridge name 'a/b'"]),
        ("bridge=br0,ifname=waytoolonginterfacename", ["invalid interface name"]),
    ]:
        assert_one_line(run_vmm(*k, "--net", arg), *words, status=2)
    same = ["--net", f"bridge=br0,mac={MAC}", "--net", f"bridge=br1,mac={MAC}"]
    assert_one_line(run_vmm(*k, *same), "two NICs with MAC address", MAC, status=2)
    assert_one_line(run_vmm(*k, *["--net", "bridge=br0"] * 5), "too many --net", status=2)
    many = ["--disk", "/dev/null"] * 4 + ["--net", "bridge=br0"] * 4
    assert_one_line(run_vmm(*k, *many), "at most 7 together", status=2)
    r = run_vmm("--help")
    assert r.returncode == 0 and "--net bridge=BR[,mac=MAC][,ifname=NAME]" in r.stdout


def test_net_backend_refused(netns, guest):
    """A bridge or TAP that is not there, or not one: status 1, one line,
    and no interface left behind."""
    k = ["--kernel", guest["kernel"], "--initrd", guest["initrd"]]
    links = sorted(netns.links())
    for arg, words in [
        ("bridge=nosuchbr", ["bridge nosuchbr does not exist"]),
        ("bridge=lo", ["lo is not a bridge"]),
        (f"bridge={BRIDGE},ifname=lo", ["interface lo already exists"]),
        ("tap=nosuchtap", ["TAP interface nosuchtap does not exist"]),
        (f"tap={BRIDGE}", [f"{BRIDGE} is not a single-queue TAP interface"]),
    ]:
        r = netns.run([VMM, *k, "--net", arg], check=False)
        assert_one_line(r, *words, status=1)
    assert sorted(netns.links()) == links


def test_net_guest(netns, nsvms):
    """Boot on a bridge: eth0 has the MAC, answers pings, moves a few MB of
    TCP both ways intact; the TAP goes away with tern-vmm."""
    vm = nsvms("--net", f"bridge={BRIDGE},mac={MAC},ifname=ternvm0", "--append", APPEND)
    vm.wait_ready()
    assert guest_mac(vm) == MAC
    assert "ternvm0" in netns.links()
    wait_guest_reachable(netns)
    res = ping(netns, count=50, interval=0.01)
    assert res["lost"] <= 1, res
    nbytes = 4 << 20
    sent, _ = host_to_guest(netns, vm, nbytes)
    expect_guest_rx(vm, sent, nbytes)
    got = guest_to_host(netns, vm, nbytes)
    print(f"guest->host TCP: {got['bytes'] / got['seconds'] / 1e6:.1f} MB/s; "
          f"host->guest: {sent['bytes'] / sent['seconds'] / 1e6:.1f} MB/s")
    # The bridge learnt the guest's MAC on the TAP.
    assert re.search(rf"^{MAC} dev ternvm0 ", netns.fdb(), re.M), netns.fdb()
    vm.kill()
    assert "ternvm0" not in netns.links()


def test_net_existing_tap(netns, nsvms):
    """tap=NAME: an existing persistent TAP, used as it is and left in
    place; MACs default to the ones derived from --name; a second NIC is
    the guest's eth1."""
    netns.run(["ip", "tuntap", "add", "ternpt0", "mode", "tap", "vnet_hdr"])
    netns.run(["ip", "link", "set", "ternpt0", "master", BRIDGE])
    vm = nsvms("--name", "vm-net", "--net", "tap=ternpt0",
               "--net", f"bridge={BRIDGE},ifname=ternvm1", "--append", APPEND)
    vm.wait_ready()
    assert guest_mac(vm) == default_mac("vm-net")
    m = vm.run('echo "mac1=$(cat /sys/class/net/eth1/address)"', r"mac1=([0-9a-f:]{17})\r?\n")
    assert m.group(1).decode() == default_mac("vm-net", 1)
    assert "ternvm1" in netns.links()
    wait_guest_reachable(netns)
    vm.child.sendline("poweroff")
    assert vm.wait_exit(timeout=60) == 0
    links = netns.links()
    assert "ternpt0" in links and "ternvm1" not in links


def test_net_live_migration(netns, nsvms, workdir):
    """Live migration on one bridge while the namespace pings the guest
    every 10 ms and streams TCP into it: a few replies lost at most, the
    stream intact, the MAC learnt on the destination's TAP."""
    src_ctl, dst_ctl = workdir / "src.sock", workdir / "dst.sock"
    net = f"bridge={BRIDGE},mac={MAC}"
    src = nsvms("--control", src_ctl, "--net", net + ",ifname=ternsrc", "--append", APPEND)
    qs = QmpClient(src_ctl).negotiate()
    src.wait_ready()
    wait_guest_reachable(netns)
    port = 4444
    dst = nsvms("--control", dst_ctl, "--net", net + ",ifname=terndst", "--append", APPEND,
                "--incoming", f"tcp:127.0.0.1:{port}")
    qd = QmpClient(dst_ctl).negotiate()
    deadline = time.monotonic() + 20
    while not re.search(rf":{port:04X} 00000000:0000 0A",
                        netns.run(["cat", "/proc/net/tcp"]).stdout):
        assert time.monotonic() < deadline, "the destination never listened"
        time.sleep(0.05)
    pinger = start_pinger(netns)
    sniffer = netns.popen([PY, "-c", SNIFFER, BRIDGE, MAC, GUEST_IP], stdin=subprocess.PIPE)
    assert sniffer.stdout.readline().strip() == "started"
    time.sleep(1)
    info = {}

    def migrate():
        r = qs.execute("migrate", uri=f"tcp:127.0.0.1:{port}")
        assert r == {"return": {}}, r
        info.update(wait_migration(qs) or {})

    # 2 MiB into the guest in 32 KiB steps 10 ms apart: the stream is open
    # before, during and after the move.
    nbytes = 2 << 20
    sent, _ = host_to_guest(netns, src, nbytes, chunk=32768, pause=0.01, during=migrate)
    assert_handed_over(src, qs, info or None)
    wait_running(qd)
    expect_guest_rx(dst, sent, nbytes)
    time.sleep(1)
    res = stop_pinger(pinger)
    # The announcement: six RARPs from tern-vmm (at once, then 50 to 750
    # ms later), and the guest's own gratuitous ARP(s) (GUEST_ANNOUNCE).
    sniffer.stdin.close()
    seen = json.loads(sniffer.stdout.readline())
    sniffer.wait(timeout=10)
    assert seen["rarp"] == 6, seen
    assert seen["garp"] >= 1, seen
    # The final MIGRATION event carries the figures (the source may have
    # exited before a last query-migrate could).
    done = [e["data"].get("stats") or {} for e in qs.history
            if e["event"] == "MIGRATION" and e["data"]["status"] == "completed"]
    downtime = (done[-1] if done else info).get("downtime", 0)
    print(f"live migration: downtime {downtime} ms, pings {res}, announced {seen}")
    # A reply is lost for each 10 ms the VM is stopped, plus the few
    # milliseconds until the bridge learns the new port (the guest's own
    # announcement, the first RARP at 50 ms): a few, not dozens.
    assert res["lost"] <= 5 + downtime // 10, res
    assert res["max_gap_ms"] < 200 + downtime, res
    assert guest_mac(dst) == MAC
    fdb = netns.fdb()
    assert re.search(rf"^{MAC} dev terndst ", fdb, re.M), fdb
    assert "ternsrc" not in netns.links()
    qd.close()
