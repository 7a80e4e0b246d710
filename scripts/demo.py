#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The seeds' scenario, measured: a VM migrates live while a client pings it.

Builds a lab of two hosts (network namespaces on one L2 segment, each with a
ternd and a bridge ternbr0, scripts/ternlab.py), boots the default guest on
host h1 with its own MAC and IP address, and from a client namespace pings
it every 10 ms while a TCP connection streams data through the guest's echo
service. Then `tern migrate --live` moves the VM to host h2, with the
progress bar, and the script reports what the client saw: packets lost, the
longest gap between two replies, and whether the TCP connection survived
with every byte intact.

Run as root after scripts/setup.sh:   scripts/demo.sh [--keep]
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERN = os.path.join(ROOT, "build", "tern")
LAB = os.path.join(ROOT, "scripts", "ternlab.py")
PY = "/usr/bin/python3"

LAB_NAME = "demo"
GUEST_IP = "10.213.77.100"
GUEST_MAC = "aa:cc:00:00:00:01"
ECHO_PORT = 7
PING_INTERVAL = 0.01


def lab(*args, check=True, **kw):
    return subprocess.run([PY, LAB, *args], check=check, **kw)


def lab_exec(host, argv, **kw):
    return [PY, LAB, "exec", "--name", LAB_NAME, host, *argv]


def tern_socket(host):
    return f"/run/ternlab/{LAB_NAME}/{host}/ternd.sock"


def tern(host, *args, **kw):
    return subprocess.run([TERN, "--socket", tern_socket(host), *args], **kw)


def say(msg):
    print(f"==> {msg}", flush=True)


# ---- the TCP probe, run inside the client namespace ---------------------------

def tcp_probe(host, port, seconds):
    """Streams numbered blocks through the guest's echo service and checks
    that every byte comes back, in order; prints one JSON line."""
    import json
    import selectors

    block = 1024
    s = socket.create_connection((host, port), timeout=10)
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = recv = 0
    longest = 0.0
    last_rx = time.monotonic()
    end = time.monotonic() + seconds
    error = None
    pending = b""

    # byte i of the stream is (i * 7 + i // 251) & 0xff: period 251 * 256
    period = 251 * 256
    table = bytes(((i * 7 + i // 251) & 0xff) for i in range(2 * period))

    def pattern(offset, n):
        o = offset % period
        return table[o:o + n]

    try:
        while True:
            now = time.monotonic()
            if now >= end and recv == sent:
                break
            if now >= end + 30:
                error = f"{sent - recv} bytes never came back"
                break
            for key, ev in sel.select(timeout=0.05):
                if ev & selectors.EVENT_READ:
                    data = s.recv(32768)
                    if not data:
                        raise ConnectionError("the guest closed the connection")
                    want = pattern(recv, len(data))
                    if data != want:
                        raise ValueError(f"corrupted data at byte {recv}")
                    recv += len(data)
                    t = time.monotonic()
                    longest = max(longest, t - last_rx)
                    last_rx = t
                if ev & selectors.EVENT_WRITE and time.monotonic() < end:
                    if not pending and sent - recv < 256 * 1024:
                        pending = pattern(sent, block)
                    if pending:
                        n = s.send(pending)
                        sent += n
                        pending = pending[n:]
            if time.monotonic() >= end:
                sel.modify(s, selectors.EVENT_READ)
    except (OSError, ValueError) as e:
        error = str(e)
    finally:
        s.close()
    print(json.dumps({"sent": sent, "received": recv, "longest_gap_ms":
                      round(longest * 1000, 1), "error": error}), flush=True)


# ---- the demo ------------------------------------------------------------------

def wait_for_ping(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(lab_exec("client", ["ping", "-c", "1", "-W", "1", GUEST_IP]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return True
    return False


def ping_summary(text):
    stamps = [float(m.group(1)) for m in
              re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", text, re.M)]
    seqs = [int(m.group(1)) for m in re.finditer(r"icmp_seq=(\d+)", text)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    sent, got = (int(m.group(1)), int(m.group(2))) if m else (max(seqs, default=0), len(seqs))
    gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)
    return sent, got, gap


def run_demo(keep):
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces, bridges, TAP devices)")
    for f in (TERN, os.path.join(ROOT, "build", "ternd"), os.path.join(ROOT, "build", "tern-vmm")):
        if not os.access(f, os.X_OK):
            sys.exit(f"demo: {f} is missing: run scripts/setup.sh first")
    say("two hosts h1 and h2 (network namespaces on one bridge), a ternd on each")
    lab("up", "--hosts", "2", "--name", LAB_NAME, "--ternd", "--force")
    cfg = f"/run/ternlab/{LAB_NAME}/vm1.cfg"
    with open(cfg, "w") as f:
        f.write(f'''name = "vm1"
memory = 256
vif = [ 'mac={GUEST_MAC}, bridge=ternbr0' ]
extra = "tern.ip={GUEST_IP}/24"
''')
    ping = probe = None
    try:
        say(f"tern create vm1 on h1 (MAC {GUEST_MAC}, IP {GUEST_IP})")
        tern("h1", "create", cfg, check=True)
        tern("h1", "list", check=True)
        if not wait_for_ping(90):
            sys.exit("demo: the guest does not answer pings")
        say(f"the client pings {GUEST_IP} every {int(PING_INTERVAL * 1000)} ms "
            f"and streams TCP through the guest's echo service (port {ECHO_PORT})")
        ping = subprocess.Popen(lab_exec("client", ["ping", "-D", "-n", "-i",
                                                    str(PING_INTERVAL), GUEST_IP]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        probe = subprocess.Popen(lab_exec("client", [PY, os.path.abspath(__file__),
                                                     "--probe", GUEST_IP, str(ECHO_PORT), "8"]),
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        say("tern migrate --live vm1 h2")
        r = tern("h1", "migrate", "--live", "vm1", "10.213.77.2")
        if r.returncode:
            sys.exit("demo: the migration failed")
        time.sleep(2)
        tern("h2", "list")
        out, _ = probe.communicate(timeout=60)
        ping.send_signal(signal.SIGINT)
        text, _ = ping.communicate(timeout=10)
        sent, got, gap = ping_summary(text)
        import json
        tcp = json.loads(out.strip().splitlines()[-1])
        print()
        say("what the client saw")
        print(f"    ping: {sent} sent, {got} received, {sent - got} lost; "
              f"longest gap between replies {gap * 1000:.0f} ms")
        if tcp["error"]:
            print(f"    TCP: connection broken: {tcp['error']}")
        else:
            print(f"    TCP: connection survived; {tcp['received']} bytes echoed back "
                  f"intact; longest wait for data {tcp['longest_gap_ms']:.0f} ms")
        return 0 if not tcp["error"] else 1
    finally:
        for p in (ping, probe):
            if p and p.poll() is None:
                p.kill()
        if keep:
            say(f"lab kept: scripts/ternlab.py down --name {LAB_NAME} removes it")
        else:
            lab("down", "--name", LAB_NAME, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="leave the lab running")
    ap.add_argument("--probe", nargs=3, metavar=("HOST", "PORT", "SECONDS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.probe:
        tcp_probe(a.probe[0], int(a.probe[1]), float(a.probe[2]))
        return 0
    return run_demo(a.keep)


if __name__ == "__main__":
    sys.exit(main())
