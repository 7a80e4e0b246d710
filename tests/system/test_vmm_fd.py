# SPDX-License-Identifier: MIT
"""What ternd needs from tern-vmm, on real tern-vmm processes with the real
guest (docs/control-protocol.md, docs/migration-stream.md):

- a migration over file descriptors: the destination takes an inherited,
  connected socket (--incoming fd:3), the source is handed the other end
  with getfd (SCM_RIGHTS) and migrates to fd:NAME; to a file or a pipe too;
- an incoming tern-vmm bound to its parent with PR_SET_PDEATHSIG(SIGKILL):
  killing the parent mid-migration rolls back (the source keeps the VM),
  while after the commit the VM outlives its parent;
- the domain config (--domain-config) travelling with every save and
  migration, kept by the restored or received VM;
- --name / query-name, system_reset, and --no-reboot."""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import VMM, QmpClient, guest_uptime, run_vmm
from test_migrate import (MEM, assert_handed_over, assert_source_survived, migrate,
                          migration_statuses, start_memstress, start_vm, wait_active,
                          wait_migration, wait_running)
from toolstack import Console

CONFIG = ('name = "vm1"\nmemory = 256\n'
          "disk = [ 'file:/srv/tern/vm1.img,vda,w' ]\n"
          "extra = \"tern.ip=10.0.0.10/24\"  # a comment\n")

# A stand-in for ternd starting an incoming tern-vmm: fork; the child binds
# itself to this process (PR_SET_PDEATHSIG = 1, SIGKILL), takes the
# connection as fd 3, sends its output to a log and execs tern-vmm. This
# process prints the child's pid and waits to be killed.
PARENT = r"""
import ctypes, os, signal, sys
fd, log, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
me = os.getpid()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != me:
        os._exit(127)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.execv(argv[0], argv)
print(pid, flush=True)
while True:
    signal.pause()
"""


class Parent:
    """A ternd-like parent process and the incoming tern-vmm it started."""

    def __init__(self, workdir, name, conn_fd, args):
        self.log = workdir / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PARENT, str(conn_fd), str(self.log), str(VMM)]
            + [str(a) for a in args],
            pass_fds=(conn_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"the parent did not start tern-vmm: {line!r}"
        self.pid = int(line)

    def kill_parent(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def vmm_alive(self):
        """The tern-vmm child exists and is not a zombie."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
        except FileNotFoundError:
            return False

    def wait_vmm_gone(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.vmm_alive():
            assert time.monotonic() < deadline, "tern-vmm still running"
            time.sleep(0.1)

    def output(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self):
        # The process group holds the parent and tern-vmm (also once the
        # parent is gone).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def parents():
    started = []

    def start(*args):
        p = Parent(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.cleanup()


def getfd(q, name, fd):
    """getfd with fd passed by SCM_RIGHTS alongside the request line."""
    line = b'{"execute": "getfd", "arguments": {"fdname": "%s"}}\n' % name.encode()
    socket.send_fds(q.sock, [line], [fd])
    return q.answer()


def domain_record(path):
    """The DOMAIN record's text of a snapshot file (None when it has none),
    walking the records (docs/migration-stream.md) up to the first page or
    state record."""
    data = path.read_bytes()
    assert data[:8] == b"\x7fTERNVM\n", "not a tern migration stream"
    off = 32
    while off + 8 <= len(data):
        rtype, flags, length = struct.unpack_from("<HHI", data, off)
        if rtype == 5:
            assert flags & 1, "DOMAIN must be optional"
            return data[off + 8:off + 8 + length].decode()
        if rtype in (2, 3, 4):
            return None
        off += 8 + length + (-length % 8) + 8
    raise AssertionError("stream ends before its END record")


def shell_answers(vm):
    """A Vm (pexpect console) or a Console answers a shell line."""
    vm.run('echo "answer=$((6*7))"', r"answer=42")


# ---- tests ----------------------------------------------------------------------

def test_migration_over_inherited_socket(guest, vms, parents, workdir):
    """ternd's relocation: one connected socket, one end inherited by the
    destination as fd 3, the other handed to the source with getfd. The
    guest runs on, the domain config arrives, and once committed the
    destination no longer dies with its parent."""
    cfg = workdir / "vm1.cfg"
    cfg.write_text(CONFIG)
    src, sq = start_vm(vms, workdir, "src", "--name", "vm1", "--domain-config", cfg)
    a, b = socket.socketpair()
    dctl, dcon = workdir / "dst.sock", workdir / "dst.con"
    dst = parents(workdir, "dst", b.fileno(),
                  ["--memory", MEM, "--incoming", "fd:3", "--name", "vm1",
                   "--control", dctl, "--console", f"unix:{dcon}"])
    b.close()
    dq = QmpClient(dctl).negotiate()
    assert dq.ok("query-status")["status"] == "inmigrate"
    assert dq.ok("query-name") == {"name": "vm1"}

    src.wait_ready()
    src.run('echo "moved-$((40+2))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    up0 = guest_uptime(src)

    # Names that were never given, and getfd without an fd.
    r = sq.execute("migrate", uri="fd:nope")
    assert r["error"]["desc"] == "File descriptor named 'nope' has not been found", r
    r = sq.execute("getfd", fdname="mig")
    assert r["error"]["desc"] == "No file descriptor supplied via SCM_RIGHTS", r
    assert getfd(sq, "mig", a.fileno()) == {"return": {}}
    a.close()
    migrate(sq, "fd:mig")
    info = wait_migration(sq)
    assert_handed_over(src, sq, info)
    assert "active" in migration_statuses(sq)

    wait_running(dq)
    assert dq.ok("query-migrate")["status"] == "completed"
    con = Console(dcon)
    con.run("cat /tmp/note", r"moved-42")
    assert guest_uptime(con) >= up0

    # Committed: the parent may go away, the VM stays.
    dst.kill_parent()
    time.sleep(1)
    assert dst.vmm_alive(), dst.output()
    shell_answers(con)
    assert dq.ok("query-status")["status"] == "running"

    # The domain config came with the VM: its own save carries it on.
    snap = workdir / "after.snap"
    dq.ok("save", timeout=120, file=str(snap))
    assert domain_record(snap) == CONFIG

    dq.ok("quit")
    dst.wait_vmm_gone()
    assert "failed" not in dst.output(), dst.output()


def test_killed_parent_rolls_back(guest, vms, parents, workdir):
    """ternd(B) killed mid-migration: its incoming tern-vmm dies with it
    (parent-death signal) and the source keeps the VM."""
    src, sq = start_vm(vms, workdir, "src")
    a, b = socket.socketpair()
    dctl = workdir / "dst.sock"
    dst = parents(workdir, "dst", b.fileno(),
                  ["--memory", MEM, "--incoming", "fd:3", "--control", dctl,
                   "--console", f"unix:{workdir / 'dst.con'}"])
    b.close()
    QmpClient(dctl).negotiate()
    src.wait_ready()
    start_memstress(src)
    assert getfd(sq, "mig", a.fileno()) == {"return": {}}
    a.close()
    migrate(sq, "fd:mig", bandwidth=4)
    wait_active(sq, min_bytes=2 << 20)
    dst.kill_parent()
    dst.wait_vmm_gone(timeout=10)
    info = wait_migration(sq)
    assert_source_survived(src, sq, info)
    assert sq.ok("quit") == {}
    assert src.wait_exit() == 0


def test_migrate_to_file_and_pipe_fds(guest, vms, workdir):
    """fd:NAME on a regular file and on a pipe: offline, the source exits,
    the stream restores; the domain config survives save -> restore ->
    save."""
    cfg = workdir / "vm1.cfg"
    cfg.write_text(CONFIG)
    snap = workdir / "vm.mig"
    src, sq = start_vm(vms, workdir, "src", "--domain-config", cfg)
    src.wait_ready()
    src.run('echo "filed-$((30+3))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    up0 = guest_uptime(src)
    with open(snap, "wb") as f:
        assert getfd(sq, "file", f.fileno()) == {"return": {}}
    migrate(sq, "fd:file")          # live asked, a file is always offline
    assert_handed_over(src, sq, wait_migration(sq))
    assert domain_record(snap) == CONFIG

    # Restored without --domain-config: it keeps the one it came with.
    vm, q = start_vm(vms, workdir, "restored", "--restore", snap)
    vm.run("cat /tmp/note", r"filed-33")
    assert guest_uptime(vm) >= up0
    snap2 = workdir / "again.snap"
    q.ok("save", timeout=120, file=str(snap2))
    assert domain_record(snap2) == CONFIG

    # Through a pipe, read by a thread into a file.
    piped = workdir / "piped.mig"
    r, w = os.pipe()
    done = threading.Event()

    def reader():
        with open(piped, "wb") as out:
            while True:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    break
                out.write(chunk)
        os.close(r)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert getfd(q, "pipe", w) == {"return": {}}
    os.close(w)
    migrate(q, "fd:pipe")
    assert_handed_over(vm, q, wait_migration(q))
    assert done.wait(60), "the pipe never reached end of file"
    assert domain_record(piped) == CONFIG
    vm2 = vms("--memory", MEM, "--restore", piped)
    vm2.run("cat /tmp/note", r"filed-33")
    vm2.child.sendline("poweroff")
    assert vm2.wait_exit() == 0


def test_system_reset_and_no_reboot(guest, vms, workdir):
    """system_reset reboots in the same process (RESET, host-qmp-system-reset);
    with --no-reboot a reboot, the guest's or system_reset, ends tern-vmm."""
    vm, q = start_vm(vms, workdir, "a", "--name", "r1")
    nr, nq = start_vm(vms, workdir, "b", "--no-reboot")
    nr2, nq2 = start_vm(vms, workdir, "c", "--no-reboot")
    assert q.ok("query-name") == {"name": "r1"}
    assert nq.ok("query-name") == {}

    vm.wait_ready()
    assert q.ok("system_reset") == {}
    ev = q.wait_event("RESET", timeout=30)
    assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    vm.wait_ready()             # booted again, same process
    shell_answers(vm)
    assert q.ok("query-status")["status"] == "running"

    nr.wait_ready()
    nr.child.sendline("reboot")
    ev = nq.wait_event("SHUTDOWN", timeout=60)
    assert ev["data"] == {"guest": True, "reason": "guest-reset"}
    assert nr.wait_exit() == 0
    assert not [e for e in nq.history if e["event"] == "RESET"], nq.history

    nr2.wait_ready()
    assert nq2.ok("system_reset") == {}
    ev = nq2.wait_event("SHUTDOWN", timeout=30)
    assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    assert nr2.wait_exit() == 0

    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_bad_fd_and_config_options(guest, workdir):
    """Each refused with one line and status 1 (2 for a bad name)."""
    def one_line(r, prefix="tern-vmm: "):
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix), r.stderr
        return lines[0]

    # Not open, not a socket, not a number.
    r = run_vmm("--incoming", "fd:200")
    assert r.returncode == 1 and "not open" in one_line(r)
    with open(workdir / "plain", "wb") as f:
        r = subprocess.run([str(VMM), "--incoming", f"fd:{f.fileno()}"],
                           pass_fds=(f.fileno(),), capture_output=True, text=True,
                           timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "not a socket" in one_line(r)
    r = run_vmm("--incoming", "fd:three")
    assert r.returncode == 1 and "fd:N" in one_line(r)

    # A bad name; with a good one, messages carry it.
    r = run_vmm("--name", "-x")
    assert r.returncode == 2 and "invalid name" in one_line(r)
    r = run_vmm("--name", "vm1", "--restore", workdir / "none.snap")
    assert r.returncode == 1 and "none.snap" in one_line(r, "tern-vmm[vm1]: ")

    # Domain configs: missing, empty, too big, binary.
    r = run_vmm("--domain-config", workdir / "none.cfg")
    assert r.returncode == 1 and "none.cfg" in one_line(r)
    for name, data, word in (("empty.cfg", b"", "empty"),
                             ("big.cfg", b"#" * (64 * 1024 + 1), "64 KiB"),
                             ("nul.cfg", b"name = 'a'\0", "NUL")):
        (workdir / name).write_bytes(data)
        r = run_vmm("--domain-config", workdir / name)
        assert r.returncode == 1 and word in one_line(r), (name, r.stderr)
