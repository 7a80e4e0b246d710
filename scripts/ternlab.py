#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ternlab: a lab of hosts on one machine, made of network namespaces.

    ternlab.py up [--hosts N] [--name NAME] [--ternd] [--force]
    ternlab.py down [--name NAME]
    ternlab.py status [--name NAME]
    ternlab.py exec [--name NAME] HOST CMD...      HOST: h1..hN, client, switch

Topology of a lab NAME (default "ternlab") with N hosts:

    NAME-switch   a bridge br0; one port per host (h1..hN) and one (client)
                  for the client: the lab's L2 segment
    NAME-hK       host K: its uplink eth0 (the other end of the switch's
                  port hK) is a port of the Linux bridge ternbr0, which holds
                  the host's address 10.213.77.K/24. VMs attach to ternbr0
                  (vif = [ 'bridge=ternbr0' ]), as Xen's do to xenbr0.
    NAME-client   a client: eth0 with 10.213.77.200/24

Guests take addresses from 10.213.77.100 up. Everything lives inside these
namespaces; nothing is added to the machine's own network namespace. IPv6
is off inside the lab (no router solicitations or DAD in measurements).

--ternd starts build/ternd --daemon in every host namespace: relocation
server on 10.213.77.K:8002, hosts-allow the lab subnet, socket, state
directory and config under /run/ternlab/NAME/hK/ (the pid is in
state/ternd.lock and ternd.pid). Reach it from anywhere on the machine with
`build/tern --socket /run/ternlab/NAME/hK/ternd.sock list`.

`down` kills every process in the lab's namespaces (ternd and tern-vmm
included), deletes the namespaces and /run/ternlab/NAME. It is safe to run
twice and also cleans a lab whose creator crashed half-way.

Needs root and iproute2. Importable: up(), down(), status(), probe(),
ns_name(), host_addr(), exec_argv() are what tests/system/netlab.py uses."""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(ROOT, "build"))
RUN_DIR = "/run/ternlab"
DEFAULT_NAME = "ternlab"
SUBNET = "10.213.77"            # inside the lab's namespaces only
CLIENT_OCTET = 200
GUEST_FIRST_OCTET = 100
MAX_HOSTS = 50
BRIDGE = "ternbr0"
SWITCH_BRIDGE = "br0"
RELOCATION_PORT = 8002
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$")
HOST_RE = re.compile(r"^h([1-9][0-9]?)$")
ROLES_RE = r"(h[1-9][0-9]?|client|switch)"
IP_TIMEOUT = 20


class LabError(Exception):
    """A one-line reason; the command prints it and exits 1."""


# ---- names and addresses ---------------------------------------------------------

def check_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LabError(f"bad lab name {name!r}: 1-24 of [A-Za-z0-9_.-], "
                       f"starting with a letter or digit")
    return name


def ns_name(name, host):
    """The namespace of HOST (h1..hN, client, switch) in lab NAME."""
    return f"{name}-{host}"


def host_addr(host, subnet=SUBNET):
    if host == "client":
        return f"{subnet}.{CLIENT_OCTET}"
    m = HOST_RE.match(host)
    if not m:
        raise LabError(f"no address for {host!r} (hosts are h1..hN and client)")
    return f"{subnet}.{int(m.group(1))}"


def host_mac(host):
    """Fixed, locally administered MACs for the lab's own interfaces, so that
    ternbr0 keeps its address when VMs' TAP devices join it."""
    n = CLIENT_OCTET if host == "client" else int(HOST_RE.match(host).group(1))
    return f"02:74:6c:00:00:{n:02x}"


def run_dir(name):
    return os.path.join(RUN_DIR, check_name(name))


def host_dir(name, host):
    return os.path.join(run_dir(name), host)


def ternd_paths(name, host):
    d = host_dir(name, host)
    return {"dir": d, "socket": os.path.join(d, "ternd.sock"),
            "state": os.path.join(d, "state"),
            "config": os.path.join(d, "xend-config.sxp"),
            "pidfile": os.path.join(d, "ternd.pid"),
            "log": os.path.join(d, "state", "ternd.log")}


# ---- running ip ---------------------------------------------------------------------

def ip(*args, check=True, timeout=IP_TIMEOUT):
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise LabError("no `ip` command (install iproute2)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`ip {' '.join(args)}` did not finish in {timeout}s") from None
    if check and r.returncode != 0:
        err = r.stderr.strip().replace("\n", "; ") or f"exit status {r.returncode}"
        raise LabError(f"`ip {' '.join(args)}` failed: {err}")
    return r


def require_tools():
    if os.geteuid() != 0:
        raise LabError(f"needs root: network namespaces, bridges and veth pairs "
                       f"(euid is {os.geteuid()})")
    if shutil.which("ip") is None:
        raise LabError("no `ip` command on PATH (install iproute2)")


def list_netns():
    r = ip("netns", "list", check=False)
    # "name (id: 3)" or just "name"
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def netns_pids(ns):
    r = ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def _ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _is_machine_ns(ns):
    """True if ns is (a name for) this process's or init's namespace: never
    kill everything in those."""
    ino = _ns_inode(f"/run/netns/{ns}")
    return ino is not None and ino in (_ns_inode("/proc/self/ns/net"),
                                       _ns_inode("/proc/1/ns/net"))


def probe():
    """None when this process can build a lab, else the reason it cannot."""
    try:
        require_tools()
    except LabError as e:
        return str(e)
    name = f"ternlab-probe-{os.getpid()}"
    try:
        r = ip("netns", "add", name, check=False)
        if r.returncode != 0:
            return f"cannot create a network namespace: `ip netns add` failed: {r.stderr.strip()}"
        for args in (("link", "add", "tp0", "type", "veth", "peer", "name", "tp1"),
                     ("link", "add", "tpbr", "type", "bridge")):
            r = ip("-n", name, *args, check=False)
            if r.returncode != 0:
                return f"`ip {' '.join(args)}` fails in a namespace: {r.stderr.strip()}"
        return None
    except LabError as e:
        return str(e)
    finally:
        try:
            ip("netns", "del", name, check=False)
        except LabError:
            pass


# ---- locking: one up or down at a time ------------------------------------------

class _Lock:
    def __enter__(self):
        os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
        self.fd = os.open(os.path.join(RUN_DIR, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        return False


# ---- what exists ----------------------------------------------------------------------

def lab_namespaces(name, all_ns=None):
    """The namespaces that belong to lab NAME, switch last."""
    rx = re.compile("^" + re.escape(name) + "-" + ROLES_RE + "$")
    found = [ns for ns in (all_ns if all_ns is not None else list_netns()) if rx.match(ns)]
    return sorted(found, key=lambda ns: (ns.endswith("-switch"), ns))


def read_meta(name):
    try:
        with open(os.path.join(run_dir(name), "lab.json")) as f:
            meta = json.load(f)
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def labs():
    """Names of labs that exist (run directory or namespaces)."""
    names = set()
    try:
        for d in os.listdir(RUN_DIR):
            if NAME_RE.match(d) and os.path.isdir(os.path.join(RUN_DIR, d)):
                names.add(d)
    except OSError:
        pass
    rx = re.compile("^(.+)-" + ROLES_RE + "$")
    all_ns = set(list_netns())
    for ns in all_ns:
        m = rx.match(ns)
        # only what looks like a lab: it has a switch
        if m and NAME_RE.match(m.group(1)) and ns_name(m.group(1), "switch") in all_ns:
            names.add(m.group(1))
    return sorted(names)


def exists(name):
    return bool(lab_namespaces(name)) or os.path.exists(run_dir(name))


# ---- up ----------------------------------------------------------------------------------

def up(name=DEFAULT_NAME, hosts=2, ternd=False, force=False, subnet=SUBNET, owner_pid=None,
       build_dir=None, log=None):
    """Builds lab NAME; returns its description (as status() gives it).
    owner_pid: a process whose death makes the lab stale (for tests)."""
    check_name(name)
    if not isinstance(hosts, int) or not 1 <= hosts <= MAX_HOSTS:
        raise LabError(f"--hosts must be 1 to {MAX_HOSTS} (addresses .1-.{MAX_HOSTS}; guests "
                       f"use .{GUEST_FIRST_OCTET} and up)")
    require_tools()
    build_dir = build_dir or BUILD
    if ternd:
        for prog in ("ternd", "tern-vmm"):
            p = os.path.join(build_dir, prog)
            if not os.access(p, os.X_OK):
                raise LabError(f"{p} is missing (build it: ninja -C {build_dir})")
    with _Lock():
        if exists(name):
            if not force:
                raise LabError(f"lab {name} already exists (`ternlab.py down --name {name}` "
                               f"removes it; `up --force` recreates it)")
            _down_locked(name)
        try:
            _build(name, hosts, subnet, owner_pid, ternd)
            if ternd:
                for i in range(1, hosts + 1):
                    _start_ternd(name, f"h{i}", subnet, build_dir)
        except BaseException:
            try:
                _down_locked(name)
            except LabError as e:
                if log:
                    log(f"cleanup after the failure: {e}")
            raise
    return status_of(name)


def _build(name, hosts, subnet, owner_pid, ternd):
    os.makedirs(run_dir(name), mode=0o755)
    meta = {"name": name, "hosts": hosts, "subnet": subnet, "created": time.time(),
            "owner_pid": owner_pid, "ternd": bool(ternd)}
    with open(os.path.join(run_dir(name), "lab.json"), "w") as f:
        json.dump(meta, f)

    def add_ns(role):
        ns = ns_name(name, role)
        r = ip("netns", "add", ns, check=False)
        if r.returncode != 0:
            raise LabError(f"cannot create network namespace {ns}: {r.stderr.strip()}")
        ip("-n", ns, "link", "set", "lo", "up")
        _ipv6_off(ns)
        return ns

    sw = add_ns("switch")
    ip("-n", sw, "link", "add", SWITCH_BRIDGE, "type", "bridge")
    ip("-n", sw, "link", "set", SWITCH_BRIDGE, "up")
    roles = [f"h{i}" for i in range(1, hosts + 1)] + ["client"]
    for role in roles:
        ns = add_ns(role)
        # The switch's port keeps the host's name; the host sees eth0.
        ip("-n", sw, "link", "add", role, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", sw, "link", "set", role, "master", SWITCH_BRIDGE)
        ip("-n", sw, "link", "set", role, "up")
        addr = f"{host_addr(role, subnet)}/24"
        if role == "client":
            ip("-n", ns, "link", "set", "eth0", "address", host_mac(role))
            ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            continue
        # A host: eth0 is its uplink, a port of ternbr0, which has the
        # address (and a fixed MAC, so that it does not change when a VM's
        # TAP with a lower MAC joins).
        ip("-n", ns, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", ns, "link", "set", BRIDGE, "address", host_mac(role))
        ip("-n", ns, "link", "set", "eth0", "master", BRIDGE)
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", BRIDGE, "up")
        ip("-n", ns, "addr", "add", addr, "dev", BRIDGE)


def _ipv6_off(ns):
    # /proc/sys/net is per network namespace: written from inside. A kernel
    # without IPv6 has no such files, and then there is nothing to turn off.
    subprocess.run(["ip", "netns", "exec", ns, "sh", "-c",
                    "for k in all default; do "
                    "echo 1 >/proc/sys/net/ipv6/conf/$k/disable_ipv6; done 2>/dev/null"],
                   capture_output=True, timeout=IP_TIMEOUT, stdin=subprocess.DEVNULL)


def sxp_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _start_ternd(name, host, subnet, build_dir):
    p = ternd_paths(name, host)
    os.makedirs(p["state"], mode=0o700, exist_ok=True)
    allow = "^" + re.escape(subnet) + r"\.[0-9]+$"
    with open(p["config"], "w") as f:
        f.write("# written by scripts/ternlab.py\n"
                "(xend-relocation-server yes)\n"
                f"(xend-relocation-port {RELOCATION_PORT})\n"
                f"(xend-relocation-address {sxp_quote(host_addr(host, subnet))})\n"
                f"(xend-relocation-hosts-allow {sxp_quote(allow)})\n")
    argv = ["ip", "netns", "exec", ns_name(name, host), os.path.join(build_dir, "ternd"),
            "--daemon", "--socket", p["socket"], "--state-dir", p["state"],
            "--config", p["config"]]
    startlog = os.path.join(p["dir"], "ternd.start")
    with open(startlog, "wb") as out:
        try:
            r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=30)
        except subprocess.TimeoutExpired:
            raise LabError(f"{host}: ternd --daemon did not return in 30s") from None
    if r.returncode != 0:
        raise LabError(f"{host}: ternd failed to start (exit {r.returncode}): "
                       f"{_last_line(startlog) or _last_line(p['log'])}")
    # --daemon returns once the socket listens; the lock file has the pid.
    deadline = time.monotonic() + 10
    pid = None
    while time.monotonic() < deadline:
        pid = _ternd_pid(p)
        if pid and _answers(p["socket"]):
            break
        time.sleep(0.05)
    else:
        raise LabError(f"{host}: ternd does not answer on {p['socket']}: "
                       f"{_last_line(p['log'])}")
    with open(p["pidfile"], "w") as f:
        f.write(f"{pid}\n")


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else ""
    except OSError:
        return ""


def _ternd_pid(p):
    """ternd's pid from its state directory's lock file, if it runs."""
    for path in (os.path.join(p["state"], "ternd.lock"), p["pidfile"]):
        try:
            with open(path) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if _pid_alive(pid):
            return pid
    return None


def _answers(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(sock_path)
        return b"QMP" in s.recv(4096)
    except OSError:
        return False
    finally:
        s.close()


def _pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


# ---- down --------------------------------------------------------------------------------

def down(name=DEFAULT_NAME):
    """Removes lab NAME entirely; returns the namespaces deleted. Missing
    parts are fine."""
    check_name(name)
    require_tools()
    with _Lock():
        return _down_locked(name)


def kill_netns(ns, timeout=10):
    """SIGTERM to every process in ns, a short grace, then SIGKILL until
    none is left."""
    if _is_machine_ns(ns):
        raise LabError(f"namespace {ns} is the machine's own: not touching its processes")
    me = os.getpid()
    pids = [p for p in netns_pids(ns) if p != me]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 1.0
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [p for p in netns_pids(ns) if p != me and _pid_alive(p)]
    deadline = time.monotonic() + timeout
    while pids:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise LabError(f"processes {pids} in {ns} do not die")
        time.sleep(0.05)
        pids = [p for p in netns_pids(ns) if p != me and _pid_alive(p)]


def _down_locked(name):
    errors = []
    gone = []
    namespaces = lab_namespaces(name)
    # Processes first, in every namespace (a tern-vmm's TAP sits in its
    # host's namespace), then the namespaces, hosts before the switch.
    for ns in namespaces:
        try:
            kill_netns(ns)
        except LabError as e:
            errors.append(str(e))
    for ns in namespaces:
        r = ip("netns", "del", ns, check=False)
        if r.returncode != 0 and ns in list_netns():
            errors.append(f"cannot delete namespace {ns}: {r.stderr.strip()}")
        else:
            gone.append(ns)
    d = run_dir(name)
    if os.path.lexists(d):
        # UNIX sockets of dead processes and state: all of it is the lab's.
        shutil.rmtree(d, ignore_errors=True)
        if os.path.lexists(d):
            errors.append(f"cannot remove {d}")
    if errors:
        raise LabError("; ".join(errors))
    return gone


# ---- status --------------------------------------------------------------------------

def status_of(name, all_ns=None):
    """A dict describing lab NAME as it is now."""
    all_ns = list_netns() if all_ns is None else all_ns
    meta = read_meta(name) or {}
    subnet = meta.get("subnet", SUBNET)
    present = set(lab_namespaces(name, all_ns))
    roles = sorted({ns[len(name) + 1:] for ns in present} |
                   {f"h{i}" for i in range(1, int(meta.get("hosts", 0) or 0) + 1)},
                   key=lambda r: (r == "switch", r == "client",
                                  int(r[1:]) if HOST_RE.match(r) else 0))
    hosts = []
    for role in roles:
        ns = ns_name(name, role)
        h = {"host": role, "namespace": ns, "present": ns in present,
             "processes": len(netns_pids(ns)) if ns in present else 0}
        if role != "switch":
            h["address"] = host_addr(role, subnet)
        if HOST_RE.match(role):
            p = ternd_paths(name, role)
            pid = _ternd_pid(p) if os.path.exists(p["state"]) else None
            h["ternd"] = {"pid": pid, "socket": p["socket"], "log": p["log"]} if (
                pid or os.path.exists(p["state"])) else None
        hosts.append(h)
    owner = meta.get("owner_pid")
    owner = owner if isinstance(owner, int) and owner > 0 else None
    return {"name": name, "run_dir": run_dir(name), "hosts": hosts,
            "complete": bool(meta) and all(h["present"] for h in hosts),
            "owner_pid": owner,
            "stale": owner is not None and not _pid_alive(owner),
            "created": meta.get("created")}


def status(name=None):
    require_tools()
    all_ns = list_netns()
    names = [check_name(name)] if name else labs()
    return [status_of(n, all_ns) for n in names if name is None or exists(n)]


def exec_argv(name, host, argv):
    """argv run inside HOST's namespace of lab NAME."""
    if host == "cl":
        host = "client"
    if not (HOST_RE.match(host) or host in ("client", "switch")):
        raise LabError(f"bad host {host!r}: h1..hN, client or switch")
    return ["ip", "netns", "exec", ns_name(name, host)] + [str(a) for a in argv]


# ---- the command ---------------------------------------------------------------------

def _tern_hint(name, host):
    return f"{os.path.join(BUILD, 'tern')} --socket {ternd_paths(name, host)['socket']} list"


def print_status(st, out=sys.stdout):
    state = "complete" if st["complete"] else "INCOMPLETE (ternlab.py down removes it)"
    if st["stale"]:
        state += f", its creator (pid {st['owner_pid']}) is gone"
    print(f"lab {st['name']}: {state}", file=out)
    for h in st["hosts"]:
        line = f"  {h['host']:<7} {h.get('address', ''):<14} ns {h['namespace']}"
        if not h["present"]:
            line += " (missing)"
        else:
            line += f", {h['processes']} processes"
        if h.get("ternd") is not None:
            t = h["ternd"]
            line += (f", ternd pid {t['pid']}" if t["pid"] else ", ternd NOT running") + \
                    f"\n          {_tern_hint(st['name'], h['host'])}"
        print(line, file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="ternlab.py", description="A lab of hosts (network namespaces) on one machine.",
        epilog="Run as root. See the top of scripts/ternlab.py for the topology.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    p = sub.add_parser("up", help="create a lab")
    p.add_argument("--hosts", type=int, default=2, metavar="N", help="hosts h1..hN (2)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"lab name ({DEFAULT_NAME})")
    p.add_argument("--ternd", action="store_true",
                   help="start a ternd with relocation on in every host")
    p.add_argument("--force", action="store_true", help="remove an existing lab NAME first")
    p = sub.add_parser("down", help="remove a lab and everything running in it")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"lab name ({DEFAULT_NAME})")
    p = sub.add_parser("status", help="show labs")
    p.add_argument("--name", default=None, help="only this lab")
    p.add_argument("--json", action="store_true", help="as JSON")
    p = sub.add_parser("exec", help="run a command inside a host of a lab")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"lab name ({DEFAULT_NAME})")
    p.add_argument("host", metavar="HOST", help="h1..hN, client or switch")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD...")
    a = ap.parse_args(argv)

    try:
        if a.cmd == "up":
            st = up(a.name, a.hosts, ternd=a.ternd, force=a.force,
                    log=lambda m: print(f"ternlab: {m}", file=sys.stderr))
            print_status(st)
            print(f"guests: vif = [ 'bridge={BRIDGE}' ], extra = "
                  f"\"tern.ip={SUBNET}.{GUEST_FIRST_OCTET}/24\" (.{GUEST_FIRST_OCTET} and up); "
                  f"client: ternlab.py exec --name {a.name} client CMD")
        elif a.cmd == "down":
            gone = down(a.name)
            print(f"lab {a.name}: " + (f"removed {len(gone)} namespaces" if gone
                                       else "nothing left to remove"))
        elif a.cmd == "status":
            sts = status(a.name)
            if a.json:
                print(json.dumps(sts, indent=2))
            elif not sts:
                print(f"no lab {a.name}" if a.name else "no labs")
            for st in ([] if a.json else sts):
                print_status(st)
            if a.name and not sts:
                return 1
        elif a.cmd == "exec":
            if not a.command:
                raise LabError("exec needs a command")
            require_tools()
            check_name(a.name)
            full = exec_argv(a.name, a.host, a.command)
            if full[3] not in list_netns():
                raise LabError(f"no host {a.host} in lab {a.name} (namespace {full[3]} "
                               f"does not exist)")
            os.execvp(full[0], full)
    except LabError as e:
        print(f"ternlab: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"ternlab: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ternlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
