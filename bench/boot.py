#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Boot and CPU benchmark: tern-vmm against Debian's qemu-system-riscv64.

Both boot the same kernel and initrd (the default guest) in one run, side by
side, N times each, interleaved. Reported: seconds from process start to
"tern-guest: ready", and the wall time of the cross-compiled guest program
cpubench (from "ready" to its checksum line), as medians and as tern/QEMU
ratios. QEMU runs TCG on `-machine virt` with its bundled OpenSBI.

Usage: bench/boot.py [--runs N] [--out FILE.md]
"""
import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import time

import pexpect
import pexpect.popen_spawn

ROOT = pathlib.Path(__file__).resolve().parents[1]
VMM = ROOT / "build" / "tern-vmm"
GUEST = pathlib.Path(os.environ.get("TERN_GUEST_DIR",
                                    pathlib.Path.home() / ".cache/tern/guest"))
KERNEL, INITRD = GUEST / "Image", GUEST / "initrd.img"
MEM = "256"
TIMEOUT = 600


def command(vmm, append):
    if vmm == "tern":
        return [str(VMM), "--memory", MEM, "--kernel", str(KERNEL),
                "--initrd", str(INITRD), "--append", append]
    return ["qemu-system-riscv64", "-machine", "virt", "-m", MEM, "-smp", "1",
            "-nographic", "-monitor", "none", "-serial", "stdio",
            "-kernel", str(KERNEL), "-initrd", str(INITRD), "-append", append]


def one_run(vmm, program):
    append = "console=ttyS0"
    if program:
        append += " tern.run=" + program
    t0 = time.monotonic()
    child = pexpect.popen_spawn.PopenSpawn(command(vmm, append), timeout=TIMEOUT)
    try:
        child.expect("tern-guest: ready")
        ready = time.monotonic() - t0
        prog_time = checksum = None
        if program:
            t1 = time.monotonic()
            child.expect(r"cpubench: ok checksum=([0-9a-f]+)")
            prog_time = time.monotonic() - t1
            checksum = child.match.group(1).decode()
        return ready, prog_time, checksum
    finally:
        child.proc.kill()
        child.proc.wait()


def machine_note():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    qemu = subprocess.run(["qemu-system-riscv64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {qemu}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    args = ap.parse_args()

    res = {v: {"ready": [], "cpu": [], "sum": set()} for v in ("tern", "qemu")}
    for i in range(args.runs):
        for v in ("tern", "qemu"):
            ready, _, _ = one_run(v, None)
            res[v]["ready"].append(ready)
            _, cpu, csum = one_run(v, "/bin/cpubench")
            res[v]["cpu"].append(cpu)
            res[v]["sum"].add(csum)
            print(f"run {i + 1} {v}: ready {ready:.2f} s, cpubench {cpu:.2f} s "
                  f"(checksum {csum})", flush=True)

    med = {v: {k: statistics.median(res[v][k]) for k in ("ready", "cpu")}
           for v in res}
    same = res["tern"]["sum"] == res["qemu"]["sum"] and len(res["tern"]["sum"]) == 1
    lines = [
        f"Machine: {machine_note()}",
        f"Runs: {args.runs} each, medians; guest memory {MEM} MiB, 1 hart.",
        "",
        "| measure | tern | QEMU | tern/QEMU |",
        "| --- | --- | --- | --- |",
        f"| boot to `tern-guest: ready` (s) | {med['tern']['ready']:.2f} | "
        f"{med['qemu']['ready']:.2f} | {med['tern']['ready'] / med['qemu']['ready']:.2f} |",
        f"| cpubench run time (s) | {med['tern']['cpu']:.2f} | {med['qemu']['cpu']:.2f} | "
        f"{med['tern']['cpu'] / med['qemu']['cpu']:.2f} |",
        "",
        f"cpubench checksums {'agree' if same else 'DIFFER'}: "
        f"tern {sorted(res['tern']['sum'])}, QEMU {sorted(res['qemu']['sum'])}",
    ]
    print("\n".join(lines))
    if args.out:
        pathlib.Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
