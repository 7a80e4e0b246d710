#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Live migration benchmark: tern-vmm against Debian's qemu-system-riscv64.

Both migrate the same guest (the default kernel and initrd, 512 MiB, 1 hart)
from one process to another on this host over loopback TCP, through their
QMP(-shaped) control sockets: `migrate`, then `query-migrate` polled until
the migration is over. Scenarios:

  idle       the guest sits at its shell prompt
  dirty-50   memstress rewrites a 64 MiB working set at about 50 MB/s
  dirty-200  the same at about 200 MB/s

Each scenario starts from a freshly booted guest and is migrated N times per
monitor, back and forth (each destination a fresh process that becomes the
next source; after each move a shell command must answer on the destination
(asked up to three times, 10 s each),
else the next run starts from a fresh guest). Reported, as
medians and tern/QEMU ratios: total time and downtime as each monitor
reports them in query-migrate, RAM bytes sent (ram.transferred), and whether
the migration converged (completed within the same budget: tern with
give-up "abort", i.e. at most 30 pre-copy rounds and 60 s; QEMU cancelled
after 60 s of pre-copy). Both use a 300 ms downtime limit and no bandwidth
limit: QEMU's default max-bandwidth is 128 MiB/s, so it is raised to
10 GB/s with migrate-set-parameters. At the end of each dirty scenario
memstress checks every page on the last destination.

Usage: bench/migrate.py [--runs N] [--out FILE.md] [--only tern|qemu] [--keep]
Environment: TERN_BUILD_DIR (where tern-vmm is), TERN_GUEST_DIR,
TERN_BENCH_QEMU_CPU (QEMU's -cpu, default rv64).
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import pexpect
import pexpect.popen_spawn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))
from sockutil import connect_unix, free_port  # noqa: E402 (needs the path above)

VMM = pathlib.Path(os.environ.get("TERN_BUILD_DIR", ROOT / "build")) / "tern-vmm"
GUEST = pathlib.Path(os.environ.get("TERN_GUEST_DIR",
                                    pathlib.Path.home() / ".cache/tern/guest"))
KERNEL, INITRD = GUEST / "Image", GUEST / "initrd.img"
MEM = "512"
DOWNTIME_MS = 300
BUDGET_S = 60
TIMEOUT = 300
SCENARIOS = [("idle", None), ("dirty-50", 50), ("dirty-200", 200)]
MEMSTRESS_MIB = 64
SETTLE_S = 3
QEMU_CPU = os.environ.get("TERN_BENCH_QEMU_CPU", "rv64")


class Qmp:
    """QMP client (tern's control socket or QEMU's -qmp): one JSON object
    per line; events are kept in self.events."""

    def __init__(self, path, timeout=30):
        self.sock = connect_unix(path, timeout, "QMP socket")
        self.buf = b""
        self.events = []
        self.recv()
        self.ok("qmp_capabilities")

    def recv(self, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, name, **arguments):
        req = {"execute": name}
        if arguments:
            req["arguments"] = arguments
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def ok(self, name, **arguments):
        msg = self.execute(name, **arguments)
        if "return" not in msg:
            raise RuntimeError(f"{name}: {msg}")
        return msg["return"]

    def close(self):
        self.sock.close()


def port_listening(port):
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                return True
    return False


class Vm:
    """One tern-vmm or QEMU process: console on pipes, QMP on a socket."""

    def __init__(self, kind, workdir, name, incoming_port=None):
        self.kind = kind
        ctl = workdir / f"{name}.qmp"
        if kind == "tern":
            cmd = [str(VMM), "--memory", MEM, "--kernel", str(KERNEL),
                   "--initrd", str(INITRD), "--control", str(ctl)]
            if incoming_port:
                cmd += ["--incoming", f"tcp:127.0.0.1:{incoming_port}"]
        else:
            cmd = ["qemu-system-riscv64", "-machine", "virt", "-cpu", QEMU_CPU, "-m", MEM, "-smp", "1",
                   "-nographic", "-monitor", "none", "-serial", "stdio",
                   "-kernel", str(KERNEL), "-initrd", str(INITRD),
                   "-append", "console=ttyS0",
                   "-qmp", f"unix:{ctl},server=on,wait=off"]
            if incoming_port:
                cmd += ["-incoming", f"tcp:127.0.0.1:{incoming_port}"]
        self.log = open(workdir / f"{name}.log", "wb")
        self.child = pexpect.popen_spawn.PopenSpawn(cmd, timeout=TIMEOUT, logfile=self.log,
                                                    preexec_fn=os.setsid)
        self.proc = self.child.proc
        self.qmp = None
        try:
            self.qmp = Qmp(ctl)
            if incoming_port:
                deadline = time.monotonic() + 30
                while not port_listening(incoming_port):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{kind} destination never listened")
                    time.sleep(0.05)
        except BaseException:
            self.kill()
            raise

    def shell(self, line, pattern, timeout=120):
        self.child.sendline(line)
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.qmp:
            self.qmp.close()
        self.log.close()

    def quit(self):
        try:
            self.qmp.ok("quit")
            self.proc.wait(timeout=20)
        except (OSError, EOFError, RuntimeError, subprocess.TimeoutExpired):
            pass
        self.kill()


def start_migration(vm, uri, **tern_args):
    """Starts vm's live migration to uri with the same settings for both
    monitors: the downtime limit, no bandwidth limit (QEMU's default cap
    raised); tern_args are extra arguments of tern-vmm's migrate."""
    if vm.kind == "qemu":
        vm.qmp.ok("migrate-set-parameters", **{"max-bandwidth": 10 ** 10,
                                               "downtime-limit": DOWNTIME_MS})
        vm.qmp.ok("migrate", uri=uri)
    else:
        vm.qmp.ok("migrate", uri=uri, **{"downtime-limit": DOWNTIME_MS, "bandwidth": 0},
                  **tern_args)


def migrate_once(src, dst, port):
    """Migrates src to dst; returns the result record."""
    q = src.qmp
    start_migration(src, f"tcp:127.0.0.1:{port}", **{"give-up": "abort"})
    t0 = time.monotonic()
    last, final, cancelled = None, False, False
    while True:
        try:
            info = q.ok("query-migrate")
        except (EOFError, OSError):
            break       # tern's source exits right after handing over
        last = info
        st = info.get("status")
        if st in ("completed", "failed", "cancelled"):
            final = True
            break
        if src.kind == "qemu" and not cancelled and time.monotonic() - t0 > BUDGET_S:
            q.ok("migrate_cancel")
            cancelled = True
        if time.monotonic() - t0 > TIMEOUT:
            raise RuntimeError(f"{src.kind}: migration did not end: {info}")
        # tern answers query-migrate with "completed" only for the few ms
        # between the hand-over and its exit: ask without pause near the end.
        if st != "device":
            time.sleep(0.005)
    wall = time.monotonic() - t0
    if not final:
        try:
            while True:
                msg = q.recv(10)
                if "event" in msg:
                    q.events.append(msg)
        except (EOFError, OSError):
            pass
    ev_ts = {}
    for e in q.events:
        if e.get("event") == "MIGRATION":
            ev_ts[e["data"]["status"]] = e["timestamp"]["seconds"] + \
                e["timestamp"]["microseconds"] / 1e6
    q.events.clear()
    completed = (final and last["status"] == "completed") or "completed" in ev_ts
    ram = (last or {}).get("ram", {})
    rec = {
        "completed": completed,
        "wall_ms": wall * 1000,
        "final": final,
        "total_ms": last.get("total-time") if final else None,
        "downtime_ms": last.get("downtime") if final else None,
        "bytes": ram.get("transferred"),
        "rounds": ram.get("dirty-sync-count"),
        "status": last["status"] if final else ("completed" if completed else "?"),
        "error": (last or {}).get("error-desc"),
    }
    if completed and not final:
        # The source left before a final answer: take the times from the
        # events' timestamps (setup -> completed; device, i.e. VM stopped,
        # -> completed) and the bytes from the destination's own count.
        if "setup" in ev_ts:
            rec["total_ms"] = (ev_ts["completed"] - ev_ts["setup"]) * 1000
        if "device" in ev_ts:
            rec["downtime_ms"] = (ev_ts["completed"] - ev_ts["device"]) * 1000
        try:
            rec["bytes"] = dst.qmp.ok("query-migrate")["ram"]["transferred"]
        except (OSError, EOFError, RuntimeError, KeyError):
            pass
    return rec


def bench_vmm(kind, runs, workdir, results):
    n = 0

    def new_name():
        nonlocal n
        n += 1
        return f"{kind}-{n}"

    def boot(rate):
        vm = Vm(kind, workdir, new_name())
        try:
            vm.child.expect("tern-guest: ready", timeout=TIMEOUT)
            vm.child.expect("~ # ", timeout=60)
            if rate:
                vm.shell(f"memstress {MEMSTRESS_MIB} {rate} 0 &",
                         r"memstress: running size=\d+MiB")
        except BaseException:
            vm.kill()
            raise
        return vm

    for scen, rate in SCENARIOS:
        # A fresh guest per scenario: the idle one has never run memstress.
        cur = boot(rate)
        moved = False       # has the current guest been migrated yet?
        try:
            for i in range(runs):
                time.sleep(SETTLE_S)
                port = free_port()
                dst = Vm(kind, workdir, new_name(), incoming_port=port)
                try:
                    rec = migrate_once(cur, dst, port)
                except Exception:
                    dst.kill()
                    raise
                rec["alive"] = None
                if rec["completed"]:
                    if kind == "tern":
                        try:
                            cur.proc.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            pass
                    cur.quit()
                    cur = dst
                    deadline = time.monotonic() + 60
                    while cur.qmp.ok("query-status")["status"] != "running":
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{kind} destination never ran")
                        time.sleep(0.05)
                    # Does the guest still work there? Asked up to three
                    # times: a line typed at QEMU's destination right after
                    # the move is sometimes lost while later ones get through.
                    rec["alive"] = False
                    for attempt in range(3):
                        want = 6 * (7 + 10 * i + attempt)
                        try:
                            cur.shell(f'echo "alive=$((6*{want // 6}))"', rf"alive={want}\b",
                                      timeout=10)
                            rec["alive"], rec["attempts"] = True, attempt + 1
                            moved = True
                            break
                        except pexpect.TIMEOUT:
                            pass
                else:
                    dst.kill()
                results[kind][scen].append(rec)
                print(f"{kind} {scen} run {i + 1}: {fmt_rec(rec)}", flush=True)
                if rec["alive"] is False:
                    # Start over with a fresh guest for the next run.
                    cur.kill()
                    cur = boot(rate)
                    moved = False
            if rate:
                m = cur.shell("touch /tmp/memstress.stop",
                              r"memstress: stats seconds=[\d.]+ rate=([\d.]+)MB/s"
                              r"[\s\S]*?memstress: (ok|FAIL)[^\r\n]*\r?\n")
                results[kind][scen + ":rate"] = float(m.group(1))
                results[kind][scen + ":verify"] = (m.group(2).decode() if moved else
                                                   "n/a (last guest never moved)")
                print(f"{kind} {scen}: memstress achieved {float(m.group(1)):.0f} MB/s, "
                      f"verify {results[kind][scen + ':verify']}", flush=True)
        finally:
            cur.quit()


def fmt_rec(r):
    def f(v, unit, scale=1.0):
        return "?" if v is None else f"{v / scale:.0f}{unit}"
    return (f"{r['status']}, total {f(r['total_ms'], ' ms')} (wall {r['wall_ms']:.0f} ms), "
            f"downtime {f(r['downtime_ms'], ' ms')}, sent {f(r['bytes'], ' MiB', 1 << 20)}, "
            f"rounds {r['rounds']}, guest answers after: {r.get('alive')}"
            f" (attempts {r.get('attempts')})"
            + ("" if r["final"] or not r["completed"] else
               ", final answer missed: times from the MIGRATION events")
            + (f", error: {r['error']}" if r["error"] else ""))


def median(recs, key, scale=1.0):
    vals = [r[key] / scale for r in recs if r["completed"] and r[key] is not None]
    return statistics.median(vals) if vals else None


def machine_note():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    qemu = subprocess.run(["qemu-system-riscv64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {qemu}"


def table(results, runs, kinds):
    def cell(v, fmt):
        return "not measured yet" if v is None else fmt.format(v)

    def ratio(a, b):
        return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    lines = [
        f"Machine: {machine_note()}.",
        f"Guest: default kernel + initrd, {MEM} MiB, 1 hart; source and destination on "
        f"this host over loopback TCP. {runs} migrations per cell (back and forth), "
        "medians over the completed ones.",
        f"Both: downtime limit {DOWNTIME_MS} ms, no bandwidth limit (QEMU's default "
        "max-bandwidth of 128 MiB/s raised to 10 GB/s with migrate-set-parameters); "
        f"convergence budget {BUDGET_S} s (tern: give-up \"abort\", max 30 rounds; QEMU: "
        "migrate_cancel after the budget). Times and bytes are what each reports in "
        "query-migrate (total-time, downtime, ram.transferred).",
        "",
        "| scenario | measure | tern | QEMU | tern/QEMU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scen, rate in SCENARIOS:
        meas = [("total time (ms)", "total_ms", 1.0, "{:.0f}"),
                ("downtime (ms)", "downtime_ms", 1.0, "{:.0f}"),
                ("RAM sent (MiB)", "bytes", float(1 << 20), "{:.1f}")]
        for label, key, scale, fmt in meas:
            v = {k: median(results[k][scen], key, scale) if k in kinds else None
                 for k in ("tern", "qemu")}
            lines.append(f"| {scen} | {label} | {cell(v['tern'], fmt)} | "
                         f"{cell(v['qemu'], fmt)} | {ratio(v['tern'], v['qemu'])} |")
        conv = {}
        for k in ("tern", "qemu"):
            recs = results[k][scen]
            conv[k] = (f"{sum(r['completed'] for r in recs)}/{len(recs)}"
                       if k in kinds and recs else "not measured yet")
        lines.append(f"| {scen} | converged | {conv['tern']} | {conv['qemu']} | |")
        alive = {}
        for k in ("tern", "qemu"):
            recs = [r for r in results[k][scen] if r["completed"]]
            alive[k] = (f"{sum(bool(r['alive']) for r in recs)}/{len(recs)} "
                        f"({sum(r.get('attempts') == 1 for r in recs)} at the first line)"
                        if k in kinds and recs else "not measured yet")
        lines.append(f"| {scen} | guest answers on the destination | {alive['tern']} | "
                     f"{alive['qemu']} | |")
        if rate:
            cells = {k: f"{results[k][scen + ':rate']:.0f} MB/s, {results[k][scen + ':verify']}"
                     if scen + ":rate" in results[k] else "not measured yet"
                     for k in ("tern", "qemu")}
            lines.append(f"| {scen} | memstress rate achieved, page check | "
                         f"{cells['tern']} | {cells['qemu']} | |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    ap.add_argument("--only", choices=("tern", "qemu"), help="measure one monitor only")
    ap.add_argument("--keep", action="store_true", help="keep the consoles' logs")
    args = ap.parse_args()

    kinds = [args.only] if args.only else ["tern", "qemu"]
    results = {k: {s: [] for s, _ in SCENARIOS} for k in ("tern", "qemu")}
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tern-bench-mig-"))
    try:
        for k in kinds:
            bench_vmm(k, args.runs, workdir, results)
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    lines = table(results, args.runs, kinds)
    print("\n".join(lines))
    if args.out:
        pathlib.Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
