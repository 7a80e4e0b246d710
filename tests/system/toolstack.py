# SPDX-License-Identifier: MIT
"""Helpers for system tests of the host toolstack (docs/toolstack.md):
ternd daemons, the tern CLI, domain configs, the guest console, and a
fixture that leaves no process behind.

    def test_x(ts):                       # the fixture: a Toolstack
        a = ts.daemon("a")                # ternd on loopback, own port
        cfg = ts.domcfg("vm1")            # an xm config for the default guest
        a.tern("create", cfg)
        con = a.console("vm1")            # the guest console (UNIX socket)
        con.wait_ready()

Every path lives under a short directory /tmp/tt-XXXX (UNIX socket paths
must stay under 108 bytes). At the end of a test every domain is destroyed,
every daemon stopped, and every tern-vmm or ternd whose command line names
that directory is killed."""
import json
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BOOT_TIMEOUT, BUILD, INITRD, KERNEL, QmpClient, connect_unix, free_port

TERND = BUILD / "ternd"
TERN = BUILD / "tern"
CLI_TIMEOUT = 60
MIGRATE_TIMEOUT = 240
DEFAULT_TEST_LIMIT = 300


# ---- per-test time limit ---------------------------------------------------------

def time_limit(seconds):
    """Decorator: the ts fixture fails the test after this many seconds."""
    def mark(fn):
        fn.tern_time_limit = seconds
        return fn
    return mark


class TimeLimitExceeded(Exception):
    pass


# ---- processes ------------------------------------------------------------------------

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def pids_matching(needle, names=(b"tern-vmm", b"ternd")):
    """Pids of live processes whose argv[0] ends in one of names and whose
    command line contains needle (a path)."""
    needle = str(needle).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        argv = cmdline(entry)
        if not argv or not argv[0]:
            continue
        base = os.path.basename(argv[0])
        if base in names and any(needle in a for a in argv):
            found.append(int(entry))
    return found


def pid_alive(pid):
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def kill_and_wait(pids, timeout=10):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_for(cond, timeout, what, interval=0.1):
    """Polls cond() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- configs -------------------------------------------------------------------------

def sxp_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def host_config(relocation=True, port=8002, address="127.0.0.1", hosts_allow="",
                memory=1024, timeout=None, extra=""):
    """xend-config.sxp text. hosts_allow is the regex list as the daemon
    should see it (backslashes get doubled here, as in the seeds' file)."""
    lines = ["# written by the tern system tests",
             f"(xend-relocation-server {'yes' if relocation else 'no'})",
             f"(xend-relocation-port {port})",
             f"(xend-relocation-address {sxp_quote(address)})",
             f"(xend-relocation-hosts-allow {sxp_quote(hosts_allow)})"]
    if memory is not None:
        lines.append(f"(tern-memory {memory})")
    if timeout is not None:
        lines.append(f"(tern-relocation-timeout {timeout})")
    return "\n".join(lines) + "\n" + extra


def domain_config_text(name, memory=128, disks=(), kernel=KERNEL, ramdisk=INITRD,
                       root=None, extra=None, on_poweroff=None, on_reboot=None,
                       on_crash=None, more=""):
    """An xm domain config for the default guest."""
    lines = ["# -*- mode: python; -*-",
             f'name = "{name}"',
             f"memory = {memory}",
             "vcpus = 1"]
    if kernel is not None:
        lines.append(f'kernel = "{kernel}"')
    if ramdisk is not None:
        lines.append(f'ramdisk = "{ramdisk}"')
    if root is not None:
        lines.append(f'root = "{root}"')
    if extra is not None:
        lines.append(f'extra = "{extra}"')
    if disks:
        lines.append("disk = [ " + ", ".join(f"'{d}'" for d in disks) + " ]")
    for key, val in (("on_poweroff", on_poweroff), ("on_reboot", on_reboot),
                     ("on_crash", on_crash)):
        if val is not None:
            lines.append(f'{key} = "{val}"')
    return "\n".join(lines) + "\n" + more


# ---- the guest console -------------------------------------------------------------

class Console:
    """A client of a domain's console socket (tern-vmm --console unix:...).
    The server replays recent output on connect; run() only looks at output
    that arrives after the command was sent."""

    def __init__(self, path, timeout=20):
        self.sock = connect_unix(path, timeout, "console")
        self.path = path
        self.buf = b""
        self.match = None

    def _read(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"console {self.path} closed; last output: {self.tail()!r}")
        self.buf += chunk
        return True

    def tail(self, n=600):
        return self.buf[-n:].decode(errors="replace")

    def expect(self, pattern, timeout=60, since=0):
        """Waits for regex pattern in the output from offset since."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf, since)
            if m:
                self.match = m
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"console: no {pattern!r} within {timeout}s; "
                                     f"last output: {self.tail()!r}")
            self._read(left)

    def silent_for(self, pattern, seconds, since):
        """True when pattern does not appear within seconds."""
        try:
            self.expect(pattern, timeout=seconds, since=since)
            return False
        except AssertionError:
            return True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def run(self, command, marker_re, timeout=60):
        """Sends a shell line; waits for a regex only its output can match."""
        pos = len(self.buf)
        self.send(command + "\n")
        return self.expect(marker_re, timeout=timeout, since=pos)

    def wait_ready(self, since=0, timeout=BOOT_TIMEOUT):
        return self.expect(rb"tern-guest: ready", timeout=timeout, since=since)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


_nonce = [0]


def shell_answers(con, timeout=60):
    """The guest's shell computes something: it runs."""
    _nonce[0] += 1
    a, b = 1000 + _nonce[0], 7
    con.run(f'echo "sum=$(({a}+{b}))"', rf"sum={a + b}\b", timeout=timeout)


def guest_uptime(con):
    m = con.run("echo \"up=$(cut -d' ' -f1 /proc/uptime)\"", r"up=(\d+\.\d+)")
    return float(m.group(1))


MEMSTRESS_RESULT = rb"memstress: (ok pages=(\d+) writes=(\d+)|FAIL[^\r\n]*)\r?\n"


def start_memstress(con, size=32, rate=20):
    con.run(f"memstress {size} {rate} 0 &",
            rf"memstress: running size={size}MiB pages=\d+", timeout=120)


def stop_memstress(con):
    """Stops memstress; asserts every page held its latest version."""
    m = con.run("touch /tmp/memstress.stop", MEMSTRESS_RESULT, timeout=120)
    line = m.group(0).decode(errors="replace").strip()
    assert m.group(1).startswith(b"ok "), line
    return int(m.group(3))


# ---- ternd ------------------------------------------------------------------------------

class Ternd:
    """One ternd in the foreground (optionally inside a lab host's network
    namespace, and/or in a private mount namespace with an empty tmpfs over
    one directory), with its own socket, state directory and config."""

    def __init__(self, workdir, config_text, name, lab=None, host=None, tmpfs=None,
                 extra_args=(), port=None):
        self.name = name
        self.dir = pathlib.Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "s"
        self.state = self.dir / "state"
        self.config = self.dir / "xend-config.sxp"
        self.config.write_text(config_text)
        self.logpath = self.dir / "ternd.log"
        self.lab, self.host, self.tmpfs = lab, host, tmpfs
        self.extra_args = list(extra_args)
        self.port = port                # relocation port (for tests)
        self.proc = None
        self.log = None
        self.starts = 0

    # ---- life cycle ----------------------------------------------------------------
    def argv(self):
        argv = [str(TERND), "--socket", str(self.sock), "--state-dir", str(self.state),
                "--config", str(self.config)] + self.extra_args
        if self.tmpfs is not None:
            # A private mount namespace in which self.tmpfs is an empty tmpfs:
            # what is there for the other daemons is absent for this one.
            argv = ["unshare", "-m", "--propagation", "private", "--",
                    "sh", "-c", 'mount -t tmpfs tern-test "$0" && exec "$@"',
                    str(self.tmpfs)] + argv
        if self.lab is not None:
            argv = self.lab.wrap(self.host, argv)
        return argv

    def start(self, timeout=20):
        if not TERND.exists():
            pytest.fail(f"{TERND} not built (ninja -C build)")
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log = open(self.logpath, "ab")
        self.log.write(f"==== start {self.starts}: {' '.join(self.argv())}\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"ternd {self.name} exited with {self.proc.returncode} "
                                     f"at start:\n{self.log_tail()}")
            if self._answers():
                return self
            if time.monotonic() >= deadline:
                raise AssertionError(f"ternd {self.name}: socket {self.sock} never answered "
                                     f"within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(str(self.sock))
            return b"QMP" in s.recv(4096)
        except OSError:
            return False
        finally:
            s.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, a bounded wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_log()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_log()
        return self.proc.returncode if self.proc else None

    def restart(self, hard=False):
        self.kill() if hard else self.stop()
        return self.start()

    def _close_log(self):
        if self.log is not None:
            self.log.close()
            self.log = None

    def log_tail(self, n=4000):
        try:
            return self.logpath.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    # ---- the CLI -------------------------------------------------------------------
    def tern(self, *args, check=True, timeout=CLI_TIMEOUT, env_socket=False, input=None,
             cwd=None):
        """Runs build/tern against this daemon (--socket, or TERN_SOCKET when
        env_socket); returns the CompletedProcess."""
        if not TERN.exists():
            pytest.fail(f"{TERN} not built (ninja -C build)")
        env = dict(os.environ)
        env.pop("TERN_SOCKET", None)
        argv = [str(TERN)]
        if env_socket:
            env["TERN_SOCKET"] = str(self.sock)
        else:
            argv += ["--socket", str(self.sock)]
        argv += [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                           input=input, cwd=cwd,
                           stdin=subprocess.DEVNULL if input is None else None)
        if check and r.returncode != 0:
            raise AssertionError(f"`{' '.join(argv[1:])}` exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}\n"
                                 f"--- ternd {self.name} log:\n{self.log_tail()}")
        return r

    def list(self):
        r = self.tern("--json", "list")
        doms = json.loads(r.stdout)
        assert isinstance(doms, list), r.stdout
        return doms

    def domain(self, dom):
        """The list entry of dom (name or id), or None."""
        for d in self.list():
            if d["name"] == dom or str(d["id"]) == str(dom):
                return d
        return None

    def names(self):
        return sorted(d["name"] for d in self.list())

    def wait_state(self, dom, states, timeout=30):
        if isinstance(states, str):
            states = (states,)
        last = [None]

        def check():
            last[0] = self.domain(dom)
            return last[0] is not None and last[0]["state"] in states
        try:
            wait_for(check, timeout, f"{dom} in state {states} on {self.name}")
        except AssertionError:
            raise AssertionError(f"{dom} on {self.name} never reached {states}: {last[0]}\n"
                                 f"{self.log_tail()}")
        return last[0]

    def wait_gone(self, dom, timeout=30):
        wait_for(lambda: self.domain(dom) is None, timeout, f"{dom} gone from {self.name}")

    # ---- the control protocol directly -----------------------------------------
    def qmp(self):
        return QmpClient(self.sock).negotiate()

    def call(self, command, **args):
        """One command on the control socket: the whole answer."""
        q = self.qmp()
        try:
            return q.execute(command, **args)
        finally:
            q.close()

    def query_domain(self, dom):
        r = self.call("query-domain", domain=str(dom))
        assert "return" in r, r
        return r["return"]

    def console(self, dom):
        return Console(self.query_domain(dom)["console"])

    def vmm_pids(self):
        """Live tern-vmm processes started from this daemon's state dir."""
        return pids_matching(self.state, names=(b"tern-vmm",))


# ---- assertions ------------------------------------------------------------------------

def assert_cli_error(r, *words, code=1):
    """The CLI failed with one line "tern: ..." naming each word."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got: {r.stderr!r}"
    assert lines[0].startswith("tern: "), lines[0]
    for w in words:
        if isinstance(w, re.Pattern):
            assert w.search(lines[0]), (w.pattern, lines[0])
        else:
            assert w in lines[0], (w, lines[0])
    return lines[0]


# ---- the fixture ----------------------------------------------------------------------

class Toolstack:
    """Daemons and configs of one test, all under one short directory."""

    def __init__(self):
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="tt-", dir="/tmp"))
        self.daemons = []

    def daemon(self, name, relocation=True, port=None, address="127.0.0.1",
               hosts_allow="", memory=1024, timeout=None, extra="", lab=None, host=None,
               tmpfs=None, start=True, config_text=None):
        if port is None:
            port = free_port() if lab is None else 8002
        if config_text is None:
            config_text = host_config(relocation=relocation, port=port, address=address,
                                      hosts_allow=hosts_allow, memory=memory,
                                      timeout=timeout, extra=extra)
        d = Ternd(self.workdir, config_text, name, lab=lab, host=host, tmpfs=tmpfs,
                  port=port)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def domcfg(self, name, filename=None, **kw):
        path = self.workdir / (filename or f"{name}.cfg")
        path.write_text(domain_config_text(name, **kw))
        return path

    def create(self, daemon, name, wait_ready=True, **kw):
        """tern create of a fresh config; returns (id, Console or None)."""
        cfg = self.domcfg(name, **kw)
        r = daemon.tern("create", cfg)
        m = re.search(r"\bid=(\d+)", r.stdout)
        assert m, f"no id in create's output: {r.stdout!r}"
        con = None
        if wait_ready:
            con = daemon.console(name)
            con.wait_ready()
        return int(m.group(1)), con

    def leftovers(self):
        return pids_matching(self.workdir, names=(b"tern-vmm", b"ternd", b"tern"))

    def cleanup(self, failed):
        report = []
        for d in self.daemons:
            if d.running():
                # Through the protocol, not the CLI under test.
                try:
                    for dom in d.call("list").get("return", []):
                        d.call("destroy", domain=str(dom["id"]))
                except Exception as e:      # still stop it below
                    report.append(f"cleanup of {d.name}: {e}")
            d.stop()
        if failed:
            for d in self.daemons:
                print(f"--- ternd {d.name} log ---\n{d.log_tail(6000)}")
                for log in sorted(d.state.glob("dom/*/vmm.log")):
                    print(f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}")
        left = self.leftovers()
        kill_and_wait(left)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return left, report


@pytest.fixture
def ts(request, guest):
    """A Toolstack; the test fails after its time_limit (default 300 s)."""
    limit = getattr(request.function, "tern_time_limit", DEFAULT_TEST_LIMIT)

    def expired(signum, frame):
        raise TimeLimitExceeded(f"test exceeded its time limit of {limit}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    env = Toolstack()
    try:
        yield env
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        rep = getattr(request.node, "rep_call", None)
        failed = rep is None or rep.failed
        env.cleanup(failed)
