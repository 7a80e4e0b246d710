# SPDX-License-Identifier: MIT
"""The console on a UNIX socket, and an idle guest that sleeps in WFI."""
import os
import time

from conftest import BOOT_TIMEOUT, connect_unix


def read_until(sock, needle, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} within {timeout}s; got {buf[-500:]!r}"
        sock.settimeout(left)
        chunk = sock.recv(4096)
        assert chunk, f"console closed; got {buf[-500:]!r}"
        buf += chunk
    return buf


def test_unix_console_attach_detach_reattach(guest, vms, workdir):
    path = workdir / "console.sock"
    vm = vms("--console", f"unix:{path}")
    s = connect_unix(path, what="console socket")
    read_until(s, b"tern-guest: ready", BOOT_TIMEOUT)
    s.sendall(b'echo "sum=$((20+22))"\n')
    read_until(s, b"sum=42", 60)
    s.close()
    # A new client gets the recent output replayed and a working shell.
    s = connect_unix(path, what="console socket")
    read_until(s, b"sum=42", 10)
    s.sendall(b'echo "again=$((7*6))"\n')
    read_until(s, b"again=42", 60)
    s.sendall(b"poweroff\n")
    s.close()
    assert vm.wait_exit() == 0
    assert not os.path.exists(path), "console socket left behind"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_guest_sleeps_instead_of_spinning(guest, vms):
    vm = vms()
    vm.wait_ready()
    vm.run('echo "idle=$((1+1))"', r"idle=2")
    time.sleep(2)  # let boot-time work settle
    before = cpu_seconds(vm.proc.pid)
    time.sleep(5)
    used = cpu_seconds(vm.proc.pid) - before
    # A spinning WFI would burn ~5 s of CPU here.
    assert used < 1.0, f"idle guest used {used:.2f} s of CPU in 5 s"
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0
