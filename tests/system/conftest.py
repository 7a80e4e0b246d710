# SPDX-License-Identifier: MIT
"""Fixtures for system tests: real tern-vmm processes booting the real
Debian guest, driven through pipes. Every process is killed at the end."""
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pexpect
import pexpect.popen_spawn
import pytest

from sockutil import connect_unix, free_port  # free_port: tests import it from here

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("TERN_BUILD_DIR", ROOT / "build"))
VMM = BUILD / "tern-vmm"
GUEST_DIR = pathlib.Path(os.environ.get("TERN_GUEST_DIR",
                                        pathlib.Path.home() / ".cache/tern/guest"))
KERNEL = GUEST_DIR / "Image"
INITRD = GUEST_DIR / "initrd.img"

# Generous bounds: they only matter when something is broken.
BOOT_TIMEOUT = int(os.environ.get("TERN_BOOT_TIMEOUT", "180"))
CMD_TIMEOUT = 60


class Vm:
    """One tern-vmm process whose console is stdin/stdout pipes."""

    def __init__(self, args, logfile):
        self.args = [str(VMM)] + [str(a) for a in args]
        self.log = open(logfile, "wb")
        self.child = pexpect.popen_spawn.PopenSpawn(
            self.args, timeout=CMD_TIMEOUT, logfile=self.log,
            preexec_fn=os.setsid)
        self.proc = self.child.proc

    def expect(self, pattern, timeout=CMD_TIMEOUT):
        return self.child.expect(pattern, timeout=timeout)

    def wait_ready(self):
        self.expect("tern-guest: ready", timeout=BOOT_TIMEOUT)

    def run(self, command, marker_re, timeout=CMD_TIMEOUT):
        """Sends a shell line; waits for a regex only the output can match."""
        self.child.sendline(command)
        self.expect(marker_re, timeout=timeout)
        return self.child.match

    def wait_exit(self, timeout=CMD_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def guest():
    if not VMM.exists():
        pytest.fail(f"{VMM} not built: run scripts/setup.sh")
    if not KERNEL.exists() or not INITRD.exists():
        pytest.fail(f"default guest missing in {GUEST_DIR}: run guest/build-guest.sh")
    return {"kernel": KERNEL, "initrd": INITRD}


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="tern-test-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def vms(workdir, request):
    """Factory for VMs; all of them are killed when the test ends."""
    started = []

    def start(*args):
        vm = Vm(args, workdir / f"console-{len(started)}.log")
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for i, _ in enumerate(started):
            log = workdir / f"console-{i}.log"
            print(f"--- console {i} ---\n" + log.read_text(errors="replace")[-4000:])


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def make_ext4(path, size_mib=64):
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(path)], check=True)


# ---- control socket, ports, fault injection (used by test_migrate.py) -------

class QmpClient:
    """Client for the QMP-shaped control socket: one JSON object per line.

    Events that arrive while waiting for an answer are kept in self.events
    (and all of them, in order, in self.history)."""

    def __init__(self, path, timeout=20):
        self.sock = connect_unix(path, timeout, "control socket")
        self.buf = b""
        self.events = []
        self.history = []
        self.greeting = self.recv()
        assert "QMP" in self.greeting, self.greeting

    def recv(self, timeout=CMD_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the control socket")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if "event" in msg:
            self.history.append(msg)
        return msg

    def answer(self, timeout=CMD_TIMEOUT):
        while True:
            msg = self.recv(timeout)
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def send_raw(self, data):
        self.sock.sendall(data)

    def execute(self, name, timeout=CMD_TIMEOUT, **arguments):
        req = {"execute": name}
        if arguments:
            req["arguments"] = arguments
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.answer(timeout)

    def ok(self, name, timeout=CMD_TIMEOUT, **arguments):
        msg = self.execute(name, timeout, **arguments)
        assert "return" in msg, f"{name}: {msg}"
        return msg["return"]

    def wait_event(self, name, timeout=CMD_TIMEOUT, match=None):
        """The first (kept or new) event NAME whose data satisfies match."""
        def fits(ev):
            return ev["event"] == name and (match is None or match(ev.get("data", {})))
        for i, ev in enumerate(self.events):
            if fits(ev):
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if "event" not in msg:
                raise AssertionError(f"unexpected answer {msg} while waiting for {name}")
            if fits(msg):
                return msg
            self.events.append(msg)

    def negotiate(self):
        assert self.ok("qmp_capabilities") == {}
        return self

    def close(self):
        self.sock.close()


def run_vmm(*args, timeout=30):
    """tern-vmm with these arguments, no console input; its CompletedProcess."""
    return subprocess.run([str(VMM)] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_error(r, *words):
    """Failed with exactly one stderr line, prefixed and naming each word."""
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tern-vmm: ")
    for w in words:
        assert w in lines[0], lines[0]


def guest_uptime(vm):
    """Seconds since the guest booted, from its /proc/uptime."""
    m = vm.run("echo \"up=$(cut -d' ' -f1 /proc/uptime)\"", r"up=(\d+\.\d+)")
    return float(m.group(1))


class FaultProxy:
    """A TCP proxy on 127.0.0.1 between a migration source and destination
    that damages the source->destination direction after `after` bytes:

    - "cut":      closes both connections at once;
    - "truncate": half-closes towards the destination (it sees EOF in the
                  middle of the stream), throws away what the source sends
                  next, and closes the source side once the destination has
                  closed its end;
    - "corrupt":  flips one bit of byte number `after`, forwards the rest;
    - "pass":     forwards everything unchanged.
    The other direction is always forwarded as is. One connection only."""

    def __init__(self, dest_port, mode, after):
        assert mode in ("cut", "truncate", "corrupt", "pass")
        self.dest_port, self.mode, self.after = dest_port, mode, after
        self.forwarded = 0          # source->destination bytes delivered
        self.fired = False
        self.error = None
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        src = dst = None
        try:
            while not self._stop.is_set():
                try:
                    src, _ = self.lsock.accept()
                    break
                except socket.timeout:
                    continue
            if src is None:
                return
            dst = socket.create_connection(("127.0.0.1", self.dest_port), timeout=10)
            src_open = dst_open = True   # still reading from each side
            to_dst = True                # still writing to the destination
            while (src_open or dst_open) and not self._stop.is_set():
                r, _, _ = select.select([s for s, o in ((src, src_open), (dst, dst_open)) if o],
                                        [], [], 0.2)
                if dst in r:
                    data = dst.recv(65536)
                    if not data:
                        # The destination is gone: so is the connection.
                        break
                    src.sendall(data)
                if src in r:
                    data = src.recv(65536)
                    if not data:
                        src_open = False
                        if to_dst:
                            dst.shutdown(socket.SHUT_WR)
                            to_dst = False
                        continue
                    if not to_dst:
                        continue            # truncated: swallowed
                    start = self.forwarded
                    if not self.fired and start + len(data) > self.after and \
                            self.mode != "pass":
                        self.fired = True
                        keep = self.after - start
                        if self.mode == "corrupt":
                            data = bytearray(data)
                            data[keep] ^= 0x10
                            data = bytes(data)
                        else:
                            dst.sendall(data[:keep])
                            self.forwarded += keep
                            if self.mode == "cut":
                                break
                            dst.shutdown(socket.SHUT_WR)   # truncate
                            to_dst = False
                            continue
                    dst.sendall(data)
                    self.forwarded += len(data)
        except OSError as e:
            self.error = e
        finally:
            for s in (src, dst):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def close(self):
        self._stop.set()
        self.thread.join(timeout=10)
        self.lsock.close()
