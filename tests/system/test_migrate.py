# SPDX-License-Identifier: MIT
"""Live migration between real tern-vmm processes on this host, driven
through the control socket (docs/control-protocol.md): the guest keeps
running memstress (guest/helpers/memstress.c), which checks afterwards that
every page of its working set holds its latest version.

Covered: live and offline migration over loopback TCP, back and forth, to a
file and restored, refusal before anything moves, and failures in the middle
(destination killed, connection cut, stream truncated or corrupted, cancel):
after a failure the source guest keeps running with its memory intact.
The guest's clock (/proc/uptime) never goes backwards across a move."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import VMM, FaultProxy, QmpClient, free_port, guest_uptime, make_ext4
from sockutil import tcp_listening

MEM = "256"
MIG_TIMEOUT = 150
TERMINAL = ("completed", "failed", "cancelled")
MEMSTRESS_RESULT = r"memstress: (ok pages=(\d+) writes=(\d+)|FAIL[^\r\n]*)\r?\n"


# ---- helpers ------------------------------------------------------------------

def start_vm(vms, workdir, name, *extra):
    ctl = workdir / f"{name}.sock"
    vm = vms("--memory", MEM, "--control", ctl, *extra)
    return vm, QmpClient(ctl).negotiate()


def start_dest(vms, workdir, name, *extra, memory=MEM):
    """A destination waiting for an incoming migration on a fresh port."""
    port = free_port()
    ctl = workdir / f"{name}.sock"
    vm = vms("--memory", memory, *extra, "--control", ctl,
             "--incoming", f"tcp:127.0.0.1:{port}")
    q = QmpClient(ctl).negotiate()
    assert q.ok("query-status")["status"] == "inmigrate"
    deadline = time.monotonic() + 20
    while not tcp_listening(port):
        assert vm.proc.poll() is None, "destination exited before listening"
        assert time.monotonic() < deadline, f"destination never listened on {port}"
        time.sleep(0.05)
    return vm, q, port


def start_memstress(vm, size=64, rate=50):
    vm.run(f"memstress {size} {rate} 0 &",
           rf"memstress: running size={size}MiB pages=\d+", timeout=120)


def stop_memstress(vm):
    """Stops the running memstress and asserts that every page verified."""
    vm.run("touch /tmp/memstress.stop", MEMSTRESS_RESULT, timeout=120)
    line = vm.child.match.group(0).decode(errors="replace").strip()
    assert vm.child.match.group(1).startswith(b"ok "), line
    return int(vm.child.match.group(3))


def shell_answers(vm):
    vm.run('echo "answer=$((6*7))"', r"answer=42")


def migration_statuses(q):
    return [e["data"]["status"] for e in q.history if e["event"] == "MIGRATION"]


def query_migrate(q):
    """query-migrate, or None if the source has gone (after completion)."""
    try:
        return q.ok("query-migrate")
    except (EOFError, OSError):
        return None


def wait_migration(q, timeout=MIG_TIMEOUT, until=TERMINAL):
    """Polls query-migrate until the status is in `until`; returns the last
    answer (None if the source exited before a final answer)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        info = query_migrate(q)
        if info is None:
            return last
        last = info
        # "none" would mean the migrate we started is not (yet) visible.
        assert info.get("status") not in (None, "none"), info
        if info["status"] in until:
            return info
        if until == TERMINAL and any(s in TERMINAL for s in migration_statuses(q)):
            # The event came first; one more query gives the final numbers.
            continue
        assert time.monotonic() < deadline, f"migration not finished: {info}"
        time.sleep(0.2)


def migrate(q, uri, **args):
    """Starts a migration; extra arguments use '-' for '_'."""
    args = {k.replace("_", "-"): v for k, v in args.items()}
    # Only this migration's events count (a destination that became a
    # source may have reported its incoming side before).
    q.history.clear()
    q.events = [e for e in q.events if e["event"] not in ("MIGRATION", "MIGRATION_PASS")]
    r = q.execute("migrate", uri=uri, **args)
    assert r == {"return": {}}, r


def wait_active(q, min_bytes=4 << 20, timeout=60):
    """Waits until the migration is active with some RAM transferred."""
    deadline = time.monotonic() + timeout
    while True:
        info = q.ok("query-migrate")
        if info["status"] == "active" and info["ram"]["transferred"] >= min_bytes:
            return info
        assert info["status"] in ("setup", "active"), info
        assert time.monotonic() < deadline, f"migration never got going: {info}"
        time.sleep(0.1)


def drain(q, timeout=30):
    """Reads (recording events) until the peer closes the control socket."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            q.recv(max(0.01, deadline - time.monotonic()))
    except (EOFError, OSError):
        pass


def assert_handed_over(src, q, info):
    """The source reports completed, says SHUTDOWN (migrated) and exits 0."""
    statuses = migration_statuses(q)
    if info is not None and info["status"] == "completed":
        assert info["downtime"] >= 0 and info["total-time"] >= info["downtime"], info
        ram = info["ram"]
        assert ram["total"] == int(MEM) << 20, info
        assert ram["transferred"] > 0 and ram["remaining"] == 0, info
    else:
        # The source was quicker to exit than our next query: the events tell.
        assert info is None or info["status"] in ("setup", "active", "device"), info
    drain(q)
    statuses = migration_statuses(q)
    assert "completed" in statuses, statuses
    assert "failed" not in statuses and "cancelled" not in statuses, statuses
    if "active" in statuses:
        assert statuses.index("active") < statuses.index("completed"), statuses
    shut = [e for e in q.history if e["event"] == "SHUTDOWN"]
    assert shut and shut[-1]["data"]["reason"] == "migrated", q.history
    assert src.wait_exit(timeout=30) == 0


def wait_running(q, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        st = q.ok("query-status")
        if st["status"] == "running":
            return
        assert st["status"] in ("inmigrate", "paused", "prelaunch"), st
        assert time.monotonic() < deadline, f"destination not running: {st}"
        time.sleep(0.1)


def assert_source_survived(src, q, info, status="failed"):
    """After a failed/cancelled migration the source guest still runs and
    its memory is intact."""
    assert info["status"] == status, info
    if status == "failed":
        assert info.get("error-desc"), info
    assert migration_statuses(q)[-1] == status, q.history
    assert q.ok("query-status") == {"status": "running", "running": True}
    assert src.proc.poll() is None
    shell_answers(src)
    stop_memstress(src)


def assert_dest_failed(dst, timeout=60):
    """The destination gave up: non-zero exit, one line saying why."""
    rc = dst.wait_exit(timeout=timeout)
    assert rc != 0
    try:
        dst.expect(r"tern-vmm: incoming migration failed: [^\r\n]+", timeout=5)
    except Exception:
        raise AssertionError("no 'incoming migration failed' line from the destination")
    out = dst.child.before + dst.child.after
    try:
        out += dst.child.read()
    except Exception:
        pass
    lines = [l for l in out.decode(errors="replace").splitlines() if "tern-vmm:" in l]
    assert len(lines) == 1, lines


# ---- tests ----------------------------------------------------------------------

def test_live_migration(guest, vms, workdir):
    """One live move over TCP while memstress dirties 50 MB/s: memory, disk,
    console and guest time all carry over; the source exits 0."""
    disk = workdir / "disk.img"
    make_ext4(disk)
    src, sq = start_vm(vms, workdir, "src", "--disk", disk)
    src.wait_ready()
    src.run('echo "moved-$((20+1))" > /mnt/note && sync && echo "wrote=$?"', r"wrote=0")
    start_memstress(src)
    up0 = guest_uptime(src)
    assert sq.ok("query-migrate")["status"] == "none"

    dst, dq, port = start_dest(vms, workdir, "dst", "--disk", disk)
    migrate(sq, f"tcp:127.0.0.1:{port}")
    info = wait_migration(sq)
    assert_handed_over(src, sq, info)
    assert "setup" in migration_statuses(sq)
    assert [e for e in sq.history if e["event"] == "MIGRATION_PASS"], sq.history

    wait_running(dq)
    assert dq.ok("query-migrate")["status"] == "completed"
    up1 = guest_uptime(dst)
    assert up1 >= up0, (up0, up1)
    shell_answers(dst)
    assert stop_memstress(dst) > 0
    dst.run("cat /mnt/note", r"moved-21")
    dst.run('echo "after-$((1+1))" >> /mnt/note && sync && echo "wrote=$?"', r"wrote=0")
    dst.child.sendline("poweroff")
    assert dst.wait_exit() == 0
    assert not (workdir / "src.sock").exists() and not (workdir / "dst.sock").exists()


def test_back_and_forth(guest, vms, workdir):
    """A -> B -> A -> B, each destination a fresh process on a new port."""
    cur, cq = start_vm(vms, workdir, "a0")
    cur.wait_ready()
    start_memstress(cur)
    up = guest_uptime(cur)
    for hop in range(1, 4):
        nxt, nq, port = start_dest(vms, workdir, f"{'ab'[hop % 2]}{hop}")
        migrate(cq, f"tcp:127.0.0.1:{port}")
        assert_handed_over(cur, cq, wait_migration(cq))
        wait_running(nq)
        now = guest_uptime(nxt)
        assert now >= up, (hop, up, now)
        up = now
        cur, cq = nxt, nq
    shell_answers(cur)
    stop_memstress(cur)
    assert cq.ok("quit") == {}
    assert cur.wait_exit() == 0


def test_offline_migration(guest, vms, workdir):
    """live=false: the guest is paused while everything moves, then runs on
    the destination."""
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()
    start_memstress(src)
    up0 = guest_uptime(src)
    dst, dq, port = start_dest(vms, workdir, "dst")
    migrate(sq, f"tcp:127.0.0.1:{port}", live=False)
    info = wait_migration(sq)
    if info is not None and info["status"] == "completed":
        # Stopped from the start: the downtime is (nearly) the whole move.
        assert info["downtime"] >= info["total-time"] * 0.5 - 50, info
    assert_handed_over(src, sq, info)
    wait_running(dq)
    assert guest_uptime(dst) >= up0
    shell_answers(dst)
    stop_memstress(dst)
    assert dq.ok("quit") == {}
    assert dst.wait_exit() == 0


def test_refused_before_anything_moves(guest, vms, workdir):
    """A destination with another RAM size refuses; the source never pauses.
    So does a port nobody listens on; a second migrate is refused."""
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()

    # Nobody listening: an error at once or a failed migration.
    dead = free_port()
    r = sq.execute("migrate", uri=f"tcp:127.0.0.1:{dead}")
    if "error" in r:
        assert r["error"]["class"] == "GenericError"
    else:
        assert wait_migration(sq)["status"] == "failed"
    r = sq.execute("migrate", uri="bogus:somewhere")
    assert r["error"]["class"] == "GenericError", r
    assert sq.ok("query-status")["status"] == "running"

    start_memstress(src)
    dst, dq, port = start_dest(vms, workdir, "dst", memory="512")
    sq.history.clear()
    migrate(sq, f"tcp:127.0.0.1:{port}")
    info = wait_migration(sq)
    assert info["status"] == "failed", info
    assert re.search(r"\bRAM\b|memory", info["error-desc"], re.I), info
    statuses = migration_statuses(sq)
    assert "device" not in statuses and "completed" not in statuses, statuses
    assert not [e for e in sq.history if e["event"] in ("STOP", "SHUTDOWN")], sq.history
    assert info.get("ram", {}).get("transferred", 0) < 1 << 20, info
    assert_source_survived(src, sq, info)
    assert_dest_failed(dst)

    # Same machine on both sides, after the refusal: works.
    start_memstress(src)
    dst2, dq2, port2 = start_dest(vms, workdir, "dst2")
    migrate(sq, f"tcp:127.0.0.1:{port2}")
    assert_handed_over(src, sq, wait_migration(sq))
    wait_running(dq2)
    stop_memstress(dst2)
    dq2.ok("quit")
    assert dst2.wait_exit() == 0


def test_destination_killed(guest, vms, workdir):
    """kill -9 of the destination in the middle of a (slowed) migration."""
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()
    start_memstress(src)
    dst, dq, port = start_dest(vms, workdir, "dst")
    migrate(sq, f"tcp:127.0.0.1:{port}", bandwidth=20)
    wait_active(sq)
    os.killpg(dst.proc.pid, signal.SIGKILL)
    assert dst.wait_exit() == -signal.SIGKILL
    info = wait_migration(sq)
    assert_source_survived(src, sq, info)


@pytest.mark.parametrize("mode", ["cut", "truncate", "corrupt"])
def test_broken_stream(guest, vms, workdir, mode):
    """The connection breaks in the middle of the RAM pages: the destination
    discards everything and says why; the source guest carries on."""
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()
    start_memstress(src)
    dst, dq, port = start_dest(vms, workdir, "dst")
    proxy = FaultProxy(port, mode, after=8 << 20)
    try:
        migrate(sq, f"tcp:127.0.0.1:{proxy.port}")
        info = wait_migration(sq)
        assert proxy.fired, (proxy.forwarded, info)
        assert_dest_failed(dst)
        assert_source_survived(src, sq, info)
    finally:
        proxy.close()


def test_cancel(guest, vms, workdir):
    """migrate-cancel in the middle: cancelled, the source guest runs on."""
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()
    start_memstress(src)
    dst, dq, port = start_dest(vms, workdir, "dst")
    migrate(sq, f"tcp:127.0.0.1:{port}", bandwidth=20)
    wait_active(sq)
    # only one migration at a time
    r = sq.execute("migrate", uri=f"tcp:127.0.0.1:{free_port()}")
    assert r["error"]["class"] == "GenericError", r
    assert sq.ok("migrate-cancel") == {}
    info = wait_migration(sq)
    assert_source_survived(src, sq, info, status="cancelled")
    assert_dest_failed(dst)


def test_migrate_to_file_and_restore(guest, vms, workdir):
    """migrate to file:PATH, then a new process --restore continues."""
    snap = workdir / "vm.mig"
    src, sq = start_vm(vms, workdir, "src")
    src.wait_ready()
    start_memstress(src)
    src.run('echo "filed-$((30+3))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    up0 = guest_uptime(src)
    migrate(sq, f"file:{snap}")
    info = wait_migration(sq)
    statuses = migration_statuses(sq)
    assert (info is not None and info["status"] == "completed") or "completed" in statuses, \
        (info, statuses)
    # The VM now lives in the file: the source exits, or at least must not
    # be kept running next to the restored copy.
    try:
        src.wait_exit(timeout=10)
    except subprocess.TimeoutExpired:
        sq.ok("quit")
        src.wait_exit()
    assert snap.stat().st_size > 1 << 20

    vm = vms("--memory", MEM, "--restore", snap)
    vm.run("cat /tmp/note", r"filed-33")
    assert guest_uptime(vm) >= up0
    shell_answers(vm)
    stop_memstress(vm)
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_bad_incoming_options(guest, workdir):
    def run(*args):
        return subprocess.run([str(VMM)] + [str(a) for a in args], capture_output=True,
                              text=True, timeout=20, stdin=subprocess.DEVNULL)

    for bad in ("tcp:127.0.0.1:0", "tcp:127.0.0.1", "udp:127.0.0.1:4444",
                "tcp:127.0.0.1:99999"):
        r = run("--incoming", bad)
        assert r.returncode != 0, bad
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tern-vmm: "), (bad, r.stderr)
