#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Network benchmark: tern-vmm against Debian's qemu-system-riscv64 in a lab.

Both run the same guest (the default kernel and initrd, 256 MiB, 1 hart,
`tern.ip=10.213.77.100/24`, MAC aa:cc:00:00:00:01) in the same lab of hosts
(scripts/ternlab.py: network namespaces h1 and h2, each with a bridge
ternbr0 on one L2 segment, and a client at 10.213.77.200), one monitor
process per host, driven directly through their QMP(-shaped) control
sockets (no ternd: both sides are started and migrated the same way):

  tern   tern-vmm --net bridge=ternbr0,mac=MAC,ifname=tvif0 in h1; the same
         plus --incoming tcp:10.213.77.2:PORT in h2; `migrate` on h1's
         control socket (tern-vmm makes the TAP and puts it on the bridge).
  QEMU   qemu-system-riscv64 -machine virt with -netdev tap (a TAP qtap0
         this script creates in each host and adds to ternbr0; vhost off)
         and -device virtio-net-device with the same MAC (modern virtio-mmio,
         as tern's); -incoming tcp:10.213.77.2:PORT in h2; QMP `migrate`.
         QEMU announces the guest after the move by itself.

Per repetition and monitor, on a freshly booted guest on h1:

  1. throughput: the client reads the guest's stream service (port 19)
     for T seconds (guest->client), then writes to its discard service
     (port 9) for T seconds and half-closes; the guest answers "discarded
     N" (client->guest). MB/s = 10^6 bytes per second, from connect to the
     last byte read (resp. to the guest's answer).
  2. outage: the client pings the guest every 10 ms (ping -D) and streams
     TCP through its echo service (port 7; scripts/demo.py's probe) while
     the guest live-migrates from h1 to h2. Reported: replies lost (gaps
     in icmp_seq), the longest gap between two replies, the longest gap
     before the migration started (the baseline of this loaded machine),
     total time and downtime as each monitor reports them (query-migrate;
     tern's source exits once done, so its figures may come from the final
     MIGRATION event's stats), and whether the TCP stream survived intact.

Both: downtime limit 300 ms and no bandwidth limit (QEMU's default
max-bandwidth of 128 MiB/s raised with migrate-set-parameters), as in
bench/migrate.py. Medians over N repetitions; tern/QEMU ratios.

Usage (as root): bench/network.py [--runs N] [--seconds T] [--quick]
                     [--no-tcp] [--only tern|qemu] [--out FILE.md] [--keep]
Environment: TERN_BUILD_DIR, TERN_GUEST_DIR, TERN_BENCH_QEMU_CPU (as
bench/migrate.py). The lab (named "benchnet") and every process in it are
removed at the end, also after a failure or Ctrl-C.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
import ternlab  # noqa: E402  (the lab of hosts)
import pexpect.popen_spawn  # noqa: E402
from migrate import (GUEST, INITRD, KERNEL, QEMU_CPU, VMM, Qmp,  # noqa: E402
                     machine_note, start_migration)
from sockutil import tcp_listening  # noqa: E402 (on the path bench/migrate.py sets)

PY = "/usr/bin/python3"
LAB = "benchnet"
GUEST_IP = "10.213.77.100"
GUEST_MAC = "aa:cc:00:00:00:01"
MEM = "256"
TERN_TAP = "tvif0"
QEMU_TAP = "qtap0"
PING_INTERVAL = 0.01
PRE_S = 2.0             # traffic before the migration starts
POST_S = 2.5            # and after the destination runs (RARPs go out up to 750 ms)
PROBE_S = 6             # the TCP echo probe's sending time
BOOT_TIMEOUT = 300
MIG_TIMEOUT = 120
ECHO, STREAM, DISCARD = 7, 19, 9


# ---- client side: run inside the client namespace (hidden options) -------------

def client_connect(host, port, out):
    """A connection to the guest's service with 10 s timeouts, or None after
    printing out (the JSON result line) with the error."""
    try:
        s = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        out["error"] = f"connect: {e}"
        print(json.dumps(out), flush=True)
        return None
    s.settimeout(10)
    return s


def client_rx(host, port, seconds):
    """Reads the guest's stream service for `seconds`; checks the counters
    at the start and at the end of what arrived."""
    out = {"bytes": 0, "seconds": 0.0, "error": None}
    s = client_connect(host, port, out)
    if not s:
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t0 = time.monotonic()
    end = t0 + seconds
    n = 0
    head = b""
    tail = b""
    buf = bytearray(1 << 18)
    try:
        while time.monotonic() < end:
            k = s.recv_into(buf)
            if not k:
                raise ConnectionError("the guest closed the connection")
            if len(head) < 8:
                head += bytes(buf[:8 - len(head)]) if k >= 8 - len(head) else bytes(buf[:k])
            tail = (tail + bytes(buf[max(0, k - 16):k]))[-16:]
            n += k
    except (OSError, ConnectionError) as e:
        out["error"] = str(e)
    t1 = time.monotonic()
    s.close()
    out["bytes"], out["seconds"] = n, t1 - t0
    # byte k of the stream is byte k mod 8 of the little-endian u64 k // 8
    if not out["error"] and n >= 16:
        a = (n // 8 - 1) * 8
        off = a - (n - len(tail))
        ok = (int.from_bytes(head[:8], "little") == 0 and
              int.from_bytes(tail[off:off + 8], "little") == a // 8)
        if not ok:
            out["error"] = "the stream's counters are wrong"
    print(json.dumps(out), flush=True)


def client_tx(host, port, seconds):
    """Writes to the guest's discard service for `seconds`, half-closes and
    reads its "discarded N" answer."""
    out = {"sent": 0, "discarded": None, "seconds": 0.0, "error": None}
    s = client_connect(host, port, out)
    if not s:
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    block = bytes(1 << 16)
    t0 = time.monotonic()
    end = t0 + seconds
    try:
        while time.monotonic() < end:
            out["sent"] += s.send(block)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        answer = b""
        while b"\n" not in answer and len(answer) < 200:
            chunk = s.recv(200)
            if not chunk:
                break
            answer += chunk
        m = re.match(rb"discarded (\d+)", answer)
        if not m:
            out["error"] = f"no 'discarded N' answer: {answer[:80]!r}"
        else:
            out["discarded"] = int(m.group(1))
            if out["discarded"] != out["sent"]:
                out["error"] = f"sent {out['sent']}, the guest got {out['discarded']}"
    except OSError as e:
        out["error"] = str(e)
    out["seconds"] = time.monotonic() - t0
    s.close()
    print(json.dumps(out), flush=True)


# ---- the lab -----------------------------------------------------------------------

def ns(host):
    return ternlab.ns_name(LAB, host)


def in_ns(host, argv):
    return ["ip", "netns", "exec", ns(host)] + [str(a) for a in argv]


def run_in(host, argv, timeout=30, check=True):
    r = subprocess.run(in_ns(host, argv), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode:
        raise RuntimeError(f"{host}: `{' '.join(map(str, argv))}` failed: "
                           f"{(r.stderr or r.stdout).strip()}")
    return r


def client_json(argv, timeout):
    """Runs this script's client side in the client namespace; its JSON line."""
    r = subprocess.run(in_ns("client", [PY, __file__, *argv]), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    lines = r.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"client {argv[0]}: no result ({r.stderr.strip()[-200:]})")
    return json.loads(lines[-1])


def make_qemu_taps():
    for h in ("h1", "h2"):
        ternlab.ip("-n", ns(h), "tuntap", "add", "dev", QEMU_TAP, "mode", "tap")
        ternlab.ip("-n", ns(h), "link", "set", QEMU_TAP, "master", ternlab.BRIDGE)
        ternlab.ip("-n", ns(h), "link", "set", QEMU_TAP, "up")


def wait_for_ping(timeout):
    run_in("client", ["ip", "neigh", "flush", "all"], check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run_in("client", ["ping", "-c", "1", "-W", "1", GUEST_IP], check=False)
        if r.returncode == 0:
            return
    raise RuntimeError(f"the guest does not answer pings after {timeout} s")


# ---- the monitors ---------------------------------------------------------------------

LIVE = []          # every Vm not yet killed: the teardown kills them


class Vm:
    """One tern-vmm or QEMU in a lab host: console on pipes, QMP on a socket."""

    def __init__(self, kind, host, workdir, name, incoming_port=None):
        self.kind, self.host, self.name = kind, host, name
        ctl = workdir / f"{name}.qmp"
        append = f"console=ttyS0 tern.ip={GUEST_IP}/24"
        if not KERNEL.exists() or not INITRD.exists():
            raise RuntimeError(f"no default guest in {GUEST} (guest/build-guest.sh)")
        if kind == "tern":
            cmd = [str(VMM), "--memory", MEM, "--kernel", str(KERNEL), "--initrd", str(INITRD),
                   "--append", append, "--control", str(ctl),
                   "--net", f"bridge={ternlab.BRIDGE},mac={GUEST_MAC},ifname={TERN_TAP}"]
            if incoming_port:
                cmd += ["--incoming", f"tcp:{ternlab.host_addr(host)}:{incoming_port}"]
        else:
            cmd = ["qemu-system-riscv64", "-machine", "virt", "-cpu", QEMU_CPU, "-m", MEM,
                   "-smp", "1", "-nographic", "-monitor", "none", "-serial", "stdio",
                   "-kernel", str(KERNEL), "-initrd", str(INITRD), "-append", append,
                   "-global", "virtio-mmio.force-legacy=false",
                   "-netdev", f"tap,id=n0,ifname={QEMU_TAP},script=no,downscript=no,vhost=off",
                   "-device", f"virtio-net-device,netdev=n0,mac={GUEST_MAC}",
                   "-qmp", f"unix:{ctl},server=on,wait=off"]
            if incoming_port:
                cmd += ["-incoming", f"tcp:{ternlab.host_addr(host)}:{incoming_port}"]
        self.log = open(workdir / f"{name}.log", "wb")
        # `ip netns exec` execs the monitor: the child's pid is the monitor's.
        self.child = pexpect.popen_spawn.PopenSpawn(in_ns(host, cmd), timeout=BOOT_TIMEOUT,
                                                    logfile=self.log, preexec_fn=os.setsid)
        self.proc = self.child.proc
        self.qmp = None
        LIVE.append(self)
        try:
            self.qmp = Qmp(ctl, timeout=30)
            if incoming_port:
                deadline = time.monotonic() + 30
                while not tcp_listening(incoming_port, self.proc.pid):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{kind} destination never listened")
                    time.sleep(0.05)
        except BaseException:
            self.kill()
            raise

    def wait_running(self, timeout):
        deadline = time.monotonic() + timeout
        while self.qmp.ok("query-status")["status"] != "running":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} {self.name} does not run")
            time.sleep(0.02)

    def kill(self):
        if self in LIVE:
            LIVE.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.qmp:
            self.qmp.close()
        self.log.close()


def migrate(src, dst, port):
    """Live-migrates src (h1) to dst (h2); returns what the source reports."""
    q = src.qmp
    start_migration(src, f"tcp:{ternlab.host_addr(dst.host)}:{port}")
    t0 = time.monotonic()
    final = None
    while final is None:
        if time.monotonic() - t0 > MIG_TIMEOUT:
            try:
                q.ok("migrate_cancel" if src.kind == "qemu" else "migrate-cancel")
            except (OSError, EOFError, RuntimeError):
                pass
            raise RuntimeError(f"{src.kind}: the migration did not end in {MIG_TIMEOUT} s")
        try:
            info = q.ok("query-migrate")
        except (EOFError, OSError):
            break       # tern's source exits right after handing over
        if info.get("status") in ("completed", "failed", "cancelled"):
            final = info
        else:
            time.sleep(0.01)
    if final is None:
        # The last MIGRATION event carries the final query-migrate answer.
        try:
            while True:
                msg = q.recv(10)
                if "event" in msg:
                    q.events.append(msg)
        except (EOFError, OSError):
            pass
        for e in q.events:
            d = e.get("data") or {}
            if e.get("event") == "MIGRATION" and d.get("status") in (
                    "completed", "failed", "cancelled"):
                final = dict(d.get("stats") or {}, status=d["status"])
    q.events.clear()
    if final is None:
        raise RuntimeError(f"{src.kind}: the source left without a final migration status")
    if final.get("status") != "completed":
        raise RuntimeError(f"{src.kind}: migration {final.get('status')}: "
                           f"{final.get('error-desc')}")
    return {"total_ms": final.get("total-time"), "downtime_ms": final.get("downtime")}


def ping_stats(text, t_mig):
    """From `ping -D` output: replies lost (missing icmp_seq up to the last
    reply, so packets still in flight at the end do not count), the longest
    gap between replies, and the longest before the migration began."""
    replies = [(float(m.group(1)), int(m.group(2))) for m in
               re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*?icmp_seq=(\d+)", text, re.M)]
    if len(replies) < 2:
        raise RuntimeError(f"ping got {len(replies)} replies: {text[-300:]!r}")
    stamps = [t for t, _ in replies]
    seqs = {s for _, s in replies}
    pairs = list(zip(stamps, stamps[1:]))
    # when each lost request went out, relative to the migration's start:
    # about one interval after the reply to the request before it
    at = dict((s, t) for t, s in replies)
    lost_at = []
    for s in range(1, max(seqs)):
        if s not in seqs:
            prev = max((q for q in seqs if q < s), default=None)
            lost_at.append(round((at[prev] - t_mig) * 1000 + (s - prev) * PING_INTERVAL * 1000)
                           if prev else None)
    return {"sent": max(seqs), "lost": max(seqs) - len(seqs), "lost_at": lost_at,
            "gap_ms": max(b - a for a, b in pairs) * 1000,
            "base_gap_ms": max((b - a for a, b in pairs if b < t_mig), default=0.0) * 1000,
            "after": sum(t > t_mig for t in stamps)}


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.n = 0
        self.port = 4440

    def vm(self, kind, host, incoming=False):
        self.n += 1
        port = None
        if incoming:
            self.port += 1
            port = self.port
        return Vm(kind, host, self.workdir, f"{kind}-{self.n}-{host}", port), port

    def one(self, kind, i):
        a = self.args
        rec = {}
        src, _ = self.vm(kind, "h1")
        dst = ping = probe = None
        try:
            src.child.expect("tern-guest: ready", timeout=BOOT_TIMEOUT)
            wait_for_ping(60)
            time.sleep(1)

            rx = client_json(["--client-rx", GUEST_IP, STREAM, a.seconds], a.seconds + 30)
            tx = client_json(["--client-tx", GUEST_IP, DISCARD, a.seconds], a.seconds + 60)
            for what, r in (("guest->client", rx), ("client->guest", tx)):
                if r["error"]:
                    raise RuntimeError(f"{kind} {what}: {r['error']}")
            rec["rx_mbs"] = rx["bytes"] / rx["seconds"] / 1e6
            rec["tx_mbs"] = tx["discarded"] / tx["seconds"] / 1e6

            dst, port = self.vm(kind, "h2", incoming=True)
            pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL)
            ping = subprocess.Popen(in_ns("client", ["ping", "-D", "-n", "-i",
                                                     str(PING_INTERVAL), GUEST_IP]), **pipes)
            if not a.no_tcp:
                probe = subprocess.Popen(in_ns("client", [
                    PY, ROOT / "scripts" / "demo.py", "--probe", GUEST_IP, ECHO, PROBE_S]),
                    **pipes)
            time.sleep(PRE_S)
            t_mig = time.time()
            t0 = time.monotonic()
            rec.update(migrate(src, dst, port))
            dst.wait_running(30)
            rec["to_running_ms"] = (time.monotonic() - t0) * 1000
            time.sleep(POST_S)
            if probe:
                out, _ = probe.communicate(timeout=PROBE_S + 60)
                try:
                    rec["tcp"] = json.loads(out.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    rec["tcp"] = {"error": f"no result from the probe: {out[-200:]!r}"}
            ping.send_signal(signal.SIGINT)
            text, _ = ping.communicate(timeout=20)
            (self.workdir / f"{src.name}.ping").write_text(text)
            rec.update(ping_stats(text, t_mig))
            if rec["after"] == 0:
                raise RuntimeError(f"{kind}: no ping reply after the migration")
        finally:
            for p in (ping, probe):
                if p and p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
            for v in (src, dst):
                if v:
                    if v.kind == "qemu" and v.proc.poll() is None:
                        try:
                            v.qmp.ok("quit")
                            v.proc.wait(timeout=10)
                        except (OSError, EOFError, RuntimeError, subprocess.TimeoutExpired):
                            pass
                    v.kill()
        tcp = rec.get("tcp")
        print(f"run {i + 1} {kind}: guest->client {rec['rx_mbs']:.1f} MB/s, client->guest "
              f"{rec['tx_mbs']:.1f} MB/s; migration total {rec['total_ms']} ms, downtime "
              f"{rec['downtime_ms']} ms, to running {rec['to_running_ms']:.0f} ms; ping "
              f"{rec['sent']} sent, {rec['lost']} lost"
              + (f" (sent {rec['lost_at']} ms after `migrate`)" if rec["lost_at"] else "")
              + f", longest gap {rec['gap_ms']:.0f} ms "
              f"(before the migration {rec['base_gap_ms']:.0f} ms)"
              + ("" if tcp is None else
                 f"; TCP echo: {'survived, ' + str(tcp['received']) + ' bytes intact' if not tcp['error'] else 'BROKEN: ' + tcp['error']}"
                 f", longest wait {tcp.get('longest_gap_ms', 0):.0f} ms"), flush=True)
        return rec


def table(res, args, kinds):
    def med(kind, key, sub=None):
        vals = [(r[key] if sub is None else r[key].get(sub)) for r in res[kind]
                if r.get(key) is not None]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def cell(v, fmt):
        return "—" if v is None else fmt.format(v)

    def ratio(a, b):
        return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    rows = [("longest gap between ping replies (ms)", "gap_ms", None, "{:.0f}"),
            ("ping replies lost", "lost", None, "{:.0f}"),
            ("longest gap before the migration (ms)", "base_gap_ms", None, "{:.0f}"),
            ("migration total time (ms), as reported", "total_ms", None, "{:.0f}"),
            ("downtime (ms), as reported", "downtime_ms", None, "{:.0f}"),
            ("`migrate` to destination running (ms)", "to_running_ms", None, "{:.0f}")]
    if not args.no_tcp:
        rows.append(("TCP echo stream: longest wait for data (ms)", "tcp", "longest_gap_ms",
                     "{:.0f}"))
    rows += [("guest→client TCP (MB/s)", "rx_mbs", None, "{:.1f}"),
             ("client→guest TCP (MB/s)", "tx_mbs", None, "{:.1f}")]
    lines = [
        f"Machine: {machine_note()}.",
        f"Guest: default kernel + initrd, {MEM} MiB, 1 hart, virtio-net on a TAP in "
        f"ternbr0; lab hosts h1 -> h2 (network namespaces, veth, bridges). "
        f"{args.runs} run(s) per monitor, medians; transfers {args.seconds:g} s; ping every "
        f"{PING_INTERVAL * 1000:.0f} ms"
        + ("" if args.no_tcp else " while a TCP stream runs through the echo service") + ".",
        "",
        "| measure | tern | QEMU | tern/QEMU |",
        "| --- | --- | --- | --- |",
    ]
    for label, key, sub, fmt in rows:
        v = {k: med(k, key, sub) if k in kinds else None for k in ("tern", "qemu")}
        lines.append(f"| {label} | {cell(v['tern'], fmt)} | {cell(v['qemu'], fmt)} | "
                     f"{ratio(v['tern'], v['qemu'])} |")
    if not args.no_tcp:
        surv = {k: (f"{sum(not r['tcp']['error'] for r in res[k])}/{len(res[k])}"
                    if k in kinds and res[k] else "—") for k in ("tern", "qemu")}
        lines.append(f"| TCP echo stream survived intact | {surv['tern']} | {surv['qemu']} | |")
    done = {k: f"{len(res[k])}/{args.runs}" if k in kinds else "—" for k in ("tern", "qemu")}
    lines.append(f"| runs completed | {done['tern']} | {done['qemu']} | |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="each transfer's length (10)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 run, 2 s transfers")
    ap.add_argument("--no-tcp", action="store_true",
                    help="only ping during the migration (no TCP echo stream)")
    ap.add_argument("--only", choices=("tern", "qemu"), help="measure one monitor only")
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    ap.add_argument("--keep", action="store_true", help="keep the consoles' logs")
    ap.add_argument("--client-rx", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--client-tx", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client_rx:
        return client_rx(args.client_rx[0], int(args.client_rx[1]), float(args.client_rx[2]))
    if args.client_tx:
        return client_tx(args.client_tx[0], int(args.client_tx[1]), float(args.client_tx[2]))
    if args.quick:
        args.runs, args.seconds = 1, 2.0
    if args.runs < 1 or not 0.5 <= args.seconds <= 600:
        ap.error("--runs must be at least 1 and --seconds 0.5 to 600")
    reason = ternlab.probe()
    if reason:
        sys.exit(f"network.py: cannot build the lab: {reason}")
    if shutil.which("qemu-system-riscv64") is None and args.only != "tern":
        sys.exit("network.py: no qemu-system-riscv64 (apt-get install qemu-system-misc)")

    # SIGTERM and SIGHUP end the run like Ctrl-C: through the teardown below.
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    kinds = [args.only] if args.only else ["tern", "qemu"]
    res = {k: [] for k in ("tern", "qemu")}
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tern-bench-net-"))
    failed = interrupted_ = False
    try:
        ternlab.up(LAB, 2, force=True, owner_pid=os.getpid())
        make_qemu_taps()
        bench = Bench(args, workdir)
        for i in range(args.runs):
            for k in kinds:
                try:
                    res[k].append(bench.one(k, i))
                except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError,
                        EOFError) as e:
                    failed = True
                    print(f"run {i + 1} {k}: FAILED: {e}", flush=True)
                except Exception as e:      # pexpect's TIMEOUT and EOF
                    if type(e).__module__.split(".")[0] != "pexpect":
                        raise
                    failed = True
                    print(f"run {i + 1} {k}: FAILED: the guest did not boot "
                          f"({type(e).__name__})", flush=True)
    except KeyboardInterrupt:
        interrupted_ = True
    finally:
        for v in list(LIVE):
            v.kill()
        try:
            ternlab.down(LAB)
        except ternlab.LabError as e:
            print(f"network.py: tearing the lab down: {e}", file=sys.stderr)
        if args.keep or failed:
            print(f"consoles' logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if interrupted_:
        print("network.py: interrupted; the lab is down", file=sys.stderr)
        return 130
    lines = table(res, args, kinds)
    print("\n".join(lines))
    if args.out:
        pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
