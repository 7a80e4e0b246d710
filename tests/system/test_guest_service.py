# SPDX-License-Identifier: MIT
"""The default guest's TCP service (guest/helpers/tcpsvc.c): echo on port 7,
a counter stream on 19, discard on 9 (guest/README.md).

Tested three ways:
- the same C source built for this machine with gcc, on loopback: the
  program's logic (many connections, bounded buffers, half-close, peers
  that vanish, the connection limit, arguments);
- the riscv64 build, compiled as guest/build-guest.sh compiles it, under
  qemu-riscv64 user-mode emulation (skipped, with the reason, without
  qemu-user or the cross compiler);
- the default guest booted by QEMU's reference machine with user-mode
  networking: /init starts the service when tern.ip configures eth0, before
  "tern-guest: ready". (Through tern-vmm's own network: test_net.py.)"""
import array
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import pexpect
import pexpect.popen_spawn
import pytest

from conftest import BOOT_TIMEOUT, INITRD, KERNEL, ROOT, free_port

SRC = ROOT / "guest" / "helpers" / "tcpsvc.c"
BANNER_RE = re.compile(r"^tern-guest: tcp service on ports (\d+) \(echo\), (\d+) \(stream\), "
                       r"(\d+) \(discard\)$")
QEMU_USER = shutil.which("qemu-riscv64")
CROSS_CC = shutil.which("riscv64-linux-gnu-gcc")
QEMU_SYSTEM = shutil.which("qemu-system-riscv64")
IO_TIMEOUT = 30


# ---- building and running the service ---------------------------------------------

@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("tcpsvc")
    out = {}
    native = d / "tcpsvc"
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    str(native), str(SRC)], check=True, capture_output=True, timeout=120)
    out["native"] = [str(native)]
    if CROSS_CC is None:
        out["riscv64"] = "no riscv64-linux-gnu-gcc (Debian package gcc-riscv64-linux-gnu)"
    elif QEMU_USER is None:
        out["riscv64"] = "no qemu-riscv64 user-mode emulator (Debian package qemu-user)"
    else:
        rv = d / "tcpsvc.riscv64"
        # the flags of guest/build-guest.sh
        r = subprocess.run([CROSS_CC, "-static", "-O2", "-ffp-contract=off", "-Wall",
                            "-Wextra", "-s", "-o", str(rv), str(SRC), "-lm"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            out["riscv64"] = f"cross compiling failed: {r.stderr.strip()[-500:]}"
        else:
            out["riscv64"] = [QEMU_USER, str(rv)]
    return out


class Service:
    """One tcpsvc process on 127.0.0.1 with kernel-chosen ports."""

    def __init__(self, argv, *args, bind="127.0.0.1"):
        self.argv = list(argv) + ["--bind", bind, "--echo", "0", "--stream", "0",
                                  "--discard", "0"] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self._readline(20)
        m = BANNER_RE.match(line)
        assert m, f"unexpected start line {line!r}; stderr: {self.stderr_now()}"
        self.echo, self.stream, self.discard = (int(g) for g in m.groups())

    def _readline(self, timeout):
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(0, left))
            if not r:
                raise AssertionError(f"no start line within {timeout}s: {buf!r}")
            c = os.read(self.proc.stdout.fileno(), 1)
            if not c:
                raise AssertionError(f"tcpsvc exited ({self.proc.wait()}): "
                                     f"{self.stderr_now()}")
            buf += c
        return buf.decode().rstrip("\n")

    def stderr_now(self):
        out = b""
        while select.select([self.proc.stderr], [], [], 0.2)[0]:
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def connect(self, port, timeout=IO_TIMEOUT):
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


@pytest.fixture(params=["native", "riscv64"])
def svc_argv(request, builds):
    argv = builds[request.param]
    if isinstance(argv, str):
        pytest.skip(argv)
    return argv


@pytest.fixture
def svc(svc_argv):
    s = Service(svc_argv)
    yield s
    s.stop()


# ---- what a client checks ----------------------------------------------------------

def stream_bytes(offset, n):
    """Bytes [offset, offset + n) of the counter stream."""
    first, last = offset // 8, (offset + n + 7) // 8
    a = array.array("Q", range(first, last))
    if sys.byteorder != "little":
        a.byteswap()
    b = a.tobytes()
    return b[offset % 8: offset % 8 + n]


def read_stream(sock, total, chunk=1 << 20, pause_at=None):
    """Reads total bytes of the stream from sock, checking each piece."""
    got = 0
    pending = bytearray()
    while got < total:
        data = sock.recv(min(chunk, total - got - len(pending)))
        assert data, f"stream closed after {got} bytes"
        pending += data
        if len(pending) >= (1 << 20) or got + len(pending) >= total:
            assert bytes(pending) == stream_bytes(got, len(pending)), \
                f"stream data wrong in bytes {got}..{got + len(pending)}"
            got += len(pending)
            pending = bytearray()
        if pause_at is not None and got + len(pending) >= pause_at:
            time.sleep(1)           # a slow reader loses nothing
            pause_at = None
    return got


def pattern(seed, n):
    """n bytes that differ per connection and per offset."""
    base = bytes((seed * 31 + i * 7 + i // 253) & 0xFF for i in range(65536 + 8192))
    out = bytearray()
    while len(out) < n:
        out += base[: n - len(out)]
    return bytes(out)


def recv_all(sock, timeout=IO_TIMEOUT):
    sock.settimeout(timeout)
    out = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return out
        out += d


# ---- the program's semantics ------------------------------------------------------

def test_start_line_and_ports(svc):
    assert len({svc.echo, svc.stream, svc.discard}) == 3
    for port in (svc.echo, svc.stream, svc.discard):
        assert 0 < port < 65536
    assert svc.alive()


def test_default_ports_in_the_start_line(builds):
    """Without port options the ports are 7, 19 and 9 (needs root to bind
    them); checked in a private network namespace so nothing else is hit."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private network namespace")
    argv = builds["native"]
    r = subprocess.run(["unshare", "-n", "sh", "-c",
                        'ip link set lo up; "$0" & p=$!; sleep 0.5; kill $p', argv[0]],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == \
        "tern-guest: tcp service on ports 7 (echo), 19 (stream), 9 (discard)", r


def test_echo_many_connections_at_once(svc):
    """40 connections, each sending a different 200 KiB in odd-sized pieces,
    all in flight together: each gets exactly its own bytes back."""
    n, size = 40, 200 * 1024
    conns = []
    for i in range(n):
        s = svc.connect(svc.echo)
        s.setblocking(False)
        conns.append({"sock": s, "data": pattern(i, size), "sent": 0, "recv": bytearray()})
    deadline = time.monotonic() + 60
    while any(len(c["recv"]) < size for c in conns):
        assert time.monotonic() < deadline, "echo did not finish in 60 s"
        rl = [c["sock"] for c in conns if len(c["recv"]) < size]
        wl = [c["sock"] for c in conns if c["sent"] < size]
        r, w, _ = select.select(rl, wl, [], 5)
        for c in conns:
            s = c["sock"]
            if s in w:
                piece = 1000 + (c["sent"] % 7919)
                try:
                    c["sent"] += s.send(c["data"][c["sent"]: c["sent"] + piece])
                except BlockingIOError:
                    pass
            if s in r:
                d = s.recv(65536)
                assert d, "echo closed a connection early"
                c["recv"] += d
    for i, c in enumerate(conns):
        assert bytes(c["recv"]) == c["data"], f"connection {i}: wrong echo"
        c["sock"].close()
    assert svc.alive()


def test_echo_buffer_is_bounded_and_half_close_flushes(svc):
    """A peer that sends without reading is stopped by flow control (the
    service holds at most 32 KiB per connection, the rest is the kernel's
    socket buffers); everything comes back afterwards, and after the peer's
    FIN the service sends the rest and closes."""
    s = svc.connect(svc.echo)
    s.setblocking(False)
    data = pattern(99, 96 << 20)
    sent = 0
    stalled_since = None
    while True:
        try:
            n = s.send(data[sent: sent + 65536])
            sent += n
            stalled_since = None
        except BlockingIOError:
            if stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 1.0:
                break
            time.sleep(0.01)
        assert sent < len(data), "the echo service buffered 96 MiB: not bounded"
    assert sent < 64 << 20, sent
    s.setblocking(True)
    s.settimeout(IO_TIMEOUT)
    s.shutdown(socket.SHUT_WR)
    back = recv_all(s)
    assert len(back) == sent and back == data[:sent]
    s.close()


def test_stream_is_consecutive_counters(svc):
    with svc.connect(svc.stream) as a, svc.connect(svc.stream) as b:
        # two at once, read in odd sizes; one pauses
        assert read_stream(a, 3_000_001, chunk=4093, pause_at=1_000_000) == 3_000_001
        assert read_stream(b, 16 << 20) == 16 << 20
    # a new connection starts again at 0; the peer's FIN (it has nothing
    # to send) does not stop the stream, its close does
    with svc.connect(svc.stream) as c:
        c.sendall(b"ignored")
        c.shutdown(socket.SHUT_WR)
        assert read_stream(c, 1_000_000) == 1_000_000
    assert svc.alive()


def test_discard_counts_what_arrived(svc):
    sizes = [0, 1, 1_234_567, 20 << 20]
    socks = [svc.connect(svc.discard) for _ in sizes]
    for s, n in zip(socks, sizes):
        s.sendall(pattern(n % 251, n))
    for s, n in zip(socks, sizes):
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == f"discarded {n}\n".encode()
        s.close()


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_peers_that_vanish_cost_nothing(svc):
    """Connections reset or closed mid-transfer, with data in flight both
    ways: the service lives on (no SIGPIPE), forgets them, and serves the
    next ones."""
    for round_ in range(3):
        socks = []
        for port in (svc.echo, svc.stream, svc.discard):
            for _ in range(5):
                s = svc.connect(port)
                socks.append((port, s))
        for port, s in socks:
            if port != svc.stream:
                s.sendall(pattern(round_, 300_000) if port == svc.discard
                          else pattern(round_, 20_000))
            else:
                s.recv(1000)
        time.sleep(0.2)
        for i, (port, s) in enumerate(socks):
            rst_close(s) if i % 2 else s.close()
    time.sleep(0.5)
    assert svc.alive(), svc.stderr_now()
    with svc.connect(svc.echo) as s:
        s.sendall(b"still here")
        assert s.recv(100) == b"still here"
    with svc.connect(svc.stream) as s:
        assert read_stream(s, 100_000) == 100_000
    # SIGUSR1: one statistics line; every vanished connection was closed
    def stats():
        svc.proc.send_signal(signal.SIGUSR1)
        return svc.stderr_now()
    deadline = time.monotonic() + 10
    while True:
        line = stats()
        m = re.search(r"tcpsvc: connections open=(\d+) accepted=(\d+) refused=0 "
                      r"closed=(\d+) ", line)
        assert m, line
        if int(m.group(1)) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert int(m.group(2)) == 47 and int(m.group(1)) == 0, line


def test_connection_limit(svc_argv):
    s = Service(svc_argv, "--max-conns", "2")
    try:
        a = s.connect(s.echo)
        b = s.connect(s.stream)
        a.sendall(b"x")
        assert a.recv(1) == b"x"
        # the third is accepted and closed at once, not left hanging
        c = s.connect(s.echo, timeout=10)
        c.settimeout(10)
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
        c.close()
        a.close()
        time.sleep(0.3)
        d = s.connect(s.discard)
        d.sendall(b"12345")
        d.shutdown(socket.SHUT_WR)
        assert recv_all(d) == b"discarded 5\n"
        b.close()
        assert s.alive()
    finally:
        s.stop()


def test_keepalive_on_connections(svc):
    """Connections whose peer disappears without a FIN or RST are reaped by
    TCP keepalive, so an idle service does not fill up with them."""
    if shutil.which("ss") is None:
        pytest.skip("no ss(8) (iproute2)")
    with svc.connect(svc.echo) as s:
        s.sendall(b"k")
        assert s.recv(1) == b"k"
        r = subprocess.run(["ss", "-tnoH", "state", "established",
                            f"( sport = :{svc.echo} )"], capture_output=True, text=True,
                           timeout=10)
        assert "keepalive" in r.stdout, r.stdout


def test_bad_arguments_are_refused_clearly(builds):
    argv = builds["native"]

    def run(*args):
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=10)

    r = run("--echo", "70000")
    assert r.returncode == 2 and r.stderr.strip() == \
        "tcpsvc: echo must be a number from 0 to 65535, not '70000'", r
    r = run("--bind", "not-an-address")
    assert r.returncode == 2 and "--bind needs an IPv4 address" in r.stderr, r
    r = run("--max-conns", "0")
    assert r.returncode == 2 and "at least 1" in r.stderr, r
    r = run("extra")
    assert r.returncode == 2 and "unexpected argument 'extra'" in r.stderr, r
    port = free_port()
    r = run("--bind", "127.0.0.1", "--echo", str(port), "--stream", str(port), "--discard", "0")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.strip() == f"tcpsvc: stream port {port}: Address already in use", r


def _pids_of(path):
    pids = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[0] == path.encode():
                        pids.append(int(e))
            except OSError:
                pass
    return pids


def test_daemon_mode_returns_once_listening(builds, tmp_path):
    """What /init relies on: --daemon prints the start line, returns 0, and
    the ports answer at once, from a process in its own session."""
    path = tmp_path / "tcpsvc-daemon"
    shutil.copy(builds["native"][0], path)
    ports = [free_port() for _ in range(3)]
    try:
        # stdout is a pipe read to its end: the service must let go of it
        # (stderr stays with it, for errors)
        with open(tmp_path / "stderr", "wb") as err:
            r = subprocess.run([str(path), "--daemon", "--bind", "127.0.0.1",
                                "--echo", str(ports[0]), "--stream", str(ports[1]),
                                "--discard", str(ports[2])],
                               stdout=subprocess.PIPE, stderr=err, text=True, timeout=10)
        assert r.returncode == 0, r
        assert (tmp_path / "stderr").read_bytes() == b"", r
        assert r.stdout == (f"tern-guest: tcp service on ports {ports[0]} (echo), {ports[1]} "
                            f"(stream), {ports[2]} (discard)\n"), r
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
            s.sendall(b"daemon")
            assert s.recv(10) == b"daemon"
        pids = _pids_of(str(path))
        assert len(pids) == 1, pids
        assert os.getsid(pids[0]) == pids[0]
    finally:
        for p in _pids_of(str(path)):
            os.kill(p, signal.SIGKILL)


# ---- in the default guest -------------------------------------------------------------

def qemu_user_net_reason():
    if QEMU_SYSTEM is None:
        return "no qemu-system-riscv64 (Debian package qemu-system-misc)"
    r = subprocess.run([QEMU_SYSTEM, "-netdev", "help"], capture_output=True, text=True,
                       timeout=30)
    if not re.search(r"^user$", r.stdout, re.M):
        return "this qemu-system-riscv64 has no user-mode networking (-netdev user)"
    return None


@pytest.fixture
def qemu_guest(guest, tmp_path):
    reason = qemu_user_net_reason()
    if reason:
        pytest.skip(reason)
    ports = {p: free_port() for p in (7, 19, 9)}
    fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in ports.items())
    argv = [QEMU_SYSTEM, "-machine", "virt", "-m", "256", "-nographic", "-no-reboot",
            "-kernel", str(KERNEL), "-initrd", str(INITRD),
            "-append", "console=ttyS0 tern.ip=10.0.2.15/24 tern.gw=10.0.2.2",
            "-netdev", f"user,id=n0,{fwd}", "-device", "virtio-net-device,netdev=n0"]
    log = open(tmp_path / "console.log", "wb")
    child = pexpect.popen_spawn.PopenSpawn(argv, timeout=60, logfile=log,
                                           preexec_fn=os.setsid)
    try:
        yield child, ports
    finally:
        if child.proc.poll() is None:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait(timeout=10)
        log.close()


def test_default_guest_serves_the_ports(qemu_guest):
    child, ports = qemu_guest
    child.expect(r"tern-guest: tcp service on ports 7 \(echo\), 19 \(stream\), 9 \(discard\)"
                 r"\r?\n", timeout=BOOT_TIMEOUT)
    # the start line comes before ready: the ports answer from then on
    child.expect("tern-guest: ready", timeout=60)

    def conn(port):
        return socket.create_connection(("127.0.0.1", ports[port]), timeout=IO_TIMEOUT)

    with conn(7) as s:
        data = pattern(7, 1 << 20)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == data
    with conn(19) as s:
        assert read_stream(s, 8 << 20) == 8 << 20
    with conn(9) as s:
        s.sendall(pattern(9, 5 << 20))
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == f"discarded {5 << 20}\n".encode()
    # the console shell is unaffected, and the service runs on its own
    child.sendline('echo "sum=$((40+2)) svc=$(pidof tcpsvc | wc -w)"')
    child.expect(r"sum=42 svc=1", timeout=60)
    child.sendline("poweroff")
    child.expect(pexpect.EOF, timeout=60)


def test_no_service_without_a_network(guest, vms):
    """tern.ip but no network device: a note, no service, ready as usual."""
    vm = vms("--memory", "128", "--append", "console=ttyS0 tern.ip=10.0.0.10/24")
    vm.expect("tern.ip given but there is no eth0", timeout=BOOT_TIMEOUT)
    vm.wait_ready()
    vm.run('echo "svc=$(pidof tcpsvc | wc -w)"', r"svc=0")
    assert b"tcp service" not in pathlib.Path(vm.log.name).read_bytes()
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0
