#!/usr/bin/python3
"""Boot the tern guest under QEMU (reference machine) and check it end to end.

Checks: boot to "tern-guest: ready"; the console shell answers commands both
through a pty (pexpect) and through plain pipes; a file written to an ext4
virtio disk survives "sync; poweroff" and a second boot; "poweroff" makes QEMU
exit; tern.run=/bin/cpubench prints its checksum and powers off.  Prints the
time to ready and the cpubench time.

Usage: guest/qemu-check.py [--guest-dir DIR] [--qemu PATH] [--timeout SECONDS]
Needs python3-pexpect, qemu-system-misc and e2fsprogs (mkfs.ext4).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pexpect

READY = "tern-guest: ready"
PROMPT = re.compile(r"~ # ")


def qemu_argv(args, disk, append="console=ttyS0"):
    return [
        args.qemu, "-machine", "virt", "-m", "256", "-nographic",
        "-kernel", os.path.join(args.guest_dir, "Image"),
        "-initrd", os.path.join(args.guest_dir, "initrd.img"),
        "-append", append,
        "-drive", f"file={disk},format=raw,if=none,id=d0",
        "-device", "virtio-blk-device,drive=d0",
    ]


def boot_pexpect(args, disk, append="console=ttyS0"):
    argv = qemu_argv(args, disk, append)
    t0 = time.monotonic()
    child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", codec_errors="replace",
                          timeout=args.timeout)
    child.logfile_read = args.log
    child.expect_exact(READY)
    return child, time.monotonic() - t0


def run_cmd(child, cmd, expect_re):
    child.expect(PROMPT)
    child.sendline(cmd)
    child.expect(expect_re)


def check(cond, what):
    if not cond:
        raise SystemExit(f"qemu-check: FAIL: {what}")
    print(f"qemu-check: ok: {what}", flush=True)


def pipe_session(args, disk):
    """Drive the console through plain pipes (QEMU's stdio is not a tty)."""
    argv = qemu_argv(args, disk)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = bytearray()
    lock = threading.Condition()

    def reader():
        while True:
            b = proc.stdout.read1(4096)
            if not b:
                break
            with lock:
                out.extend(b)
                args.log.write(b.decode("utf-8", "replace"))
                lock.notify_all()
        with lock:
            lock.notify_all()

    threading.Thread(target=reader, daemon=True).start()

    def wait_for(pattern, start):
        deadline = time.monotonic() + args.timeout
        with lock:
            while True:
                m = re.compile(pattern).search(out.decode("utf-8", "replace"), start)
                if m:
                    return m.end()
                left = deadline - time.monotonic()
                if left <= 0 or proc.poll() is not None:
                    raise SystemExit(f"qemu-check: FAIL: pipe session: no {pattern!r}")
                lock.wait(min(left, 0.5))

    pos = wait_for(re.escape(READY), 0)
    pos = wait_for(PROMPT.pattern, pos)
    for cmd, want in (("uname -m", r"\nriscv64\r*\n"), ("echo $((6*7))", r"\n42\r*\n")):
        proc.stdin.write(cmd.encode() + b"\n")
        proc.stdin.flush()
        pos = wait_for(want, pos)
        check(True, f"pipe: {cmd!r} answered")
    proc.stdin.write(b"poweroff\n")
    proc.stdin.flush()
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("qemu-check: FAIL: pipe session: poweroff did not stop QEMU")
    check(True, "pipe: poweroff stops QEMU")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guest-dir", default=os.environ.get(
        "TERN_GUEST_DIR", os.path.expanduser("~/.cache/tern/guest")))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--log", help="write the console output here")
    a = ap.parse_args()
    a.log = open(a.log, "w") if a.log else open(os.devnull, "w")
    for f in ("Image", "initrd.img"):
        if not os.path.exists(os.path.join(a.guest_dir, f)):
            raise SystemExit(f"qemu-check: {a.guest_dir}/{f} missing: run guest/build-guest.sh")
    if not shutil.which(a.qemu):
        raise SystemExit(f"qemu-check: {a.qemu} not found")

    tmp = tempfile.mkdtemp(prefix="tern-qemu-check.")
    try:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", disk], check=True)

        # boot 1: shell through a pty, write a file to the ext4 disk
        child, t_ready = boot_pexpect(a, disk)
        print(f"qemu-check: time to ready: {t_ready:.2f} s", flush=True)
        run_cmd(child, "uname -m", r"\nriscv64\r*\n")
        check(True, "'uname -m' -> riscv64")
        run_cmd(child, "echo $((6*7))", r"\n42\r*\n")
        check(True, "'echo $((6*7))' -> 42")
        run_cmd(child, "grep -c ' /mnt ext4 ' /proc/mounts", r"\n1\r*\n")
        check(True, "/dev/vda mounted at /mnt as ext4")
        run_cmd(child, "echo persist-$((40+2)) > /mnt/tern-check.txt && echo written",
                r"\nwritten\r*\n")
        child.expect(PROMPT)
        child.sendline("sync; poweroff")
        child.expect(pexpect.EOF)
        child.close()
        check(True, "'sync; poweroff' stops QEMU")

        # boot 2: the file must still be there
        child, t_ready2 = boot_pexpect(a, disk)
        print(f"qemu-check: time to ready (2nd boot): {t_ready2:.2f} s", flush=True)
        run_cmd(child, "cat /mnt/tern-check.txt", r"\npersist-42\r*\n")
        check(True, "file on ext4 survives poweroff and reboot")
        child.expect(PROMPT)
        child.sendline("poweroff")
        child.expect(pexpect.EOF)
        child.close()

        # boot 3: plain pipes instead of a pty
        pipe_session(a, disk)

        # boot 4: tern.run=/bin/cpubench
        child, t_ready3 = boot_pexpect(a, disk, "console=ttyS0 tern.run=/bin/cpubench")
        t0 = time.monotonic()
        child.expect(r"cpubench: ok checksum=([0-9a-f]{16})")
        t_bench = time.monotonic() - t0
        csum = child.match.group(1)
        child.expect_exact("tern-guest: run exited with status 0")
        child.expect(pexpect.EOF)
        child.close()
        check(True, f"tern.run=/bin/cpubench: checksum={csum}, powered off")
        print(f"qemu-check: cpubench time (ready -> checksum line): {t_bench:.2f} s", flush=True)
        print("qemu-check: all checks passed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
