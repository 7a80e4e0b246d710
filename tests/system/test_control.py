# SPDX-License-Identifier: MIT
"""The control socket (docs/control-protocol.md) on a real tern-vmm running
the real guest: status, pause and resume with a frozen guest clock, events,
quit, snapshots and restore."""
import time

import pexpect
import pytest

from conftest import BOOT_TIMEOUT, QmpClient, assert_one_line_error, guest_uptime, run_vmm


def test_pause_freezes_guest_and_clock(guest, vms, workdir):
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl)
    q = QmpClient(ctl).negotiate()
    v = q.ok("query-version")
    assert v["package"].startswith("tern-vmm ") and "major" in v["tern"]
    vm.wait_ready()
    assert q.ok("query-status") == {"status": "running", "running": True}

    up0, t0 = guest_uptime(vm), time.monotonic()
    assert q.ok("stop") == {}
    ev = q.wait_event("STOP")
    assert set(ev["timestamp"]) == {"seconds", "microseconds"}
    assert abs(ev["timestamp"]["seconds"] - time.time()) < 60
    assert q.ok("query-status") == {"status": "paused", "running": False}
    # stop again: nothing to do, no second event
    assert q.ok("pause") == {}

    # The guest makes no progress: a command typed now is not even echoed.
    vm.child.sendline('echo "paused=$((3+4))"')
    with pytest.raises(pexpect.TIMEOUT):
        vm.expect(r"paused=", timeout=3)
    paused_for = 3.0
    assert q.ok("query-status")["status"] == "paused"
    assert q.ok("cont") == {}
    q.wait_event("RESUME")
    assert not [e for e in q.events if e["event"] == "STOP"], q.events
    vm.expect(r"paused=7")
    assert q.ok("query-status") == {"status": "running", "running": True}

    up1, t1 = guest_uptime(vm), time.monotonic()
    host = t1 - t0
    guest_elapsed = up1 - up0
    # Guest time stood still while paused (it would have advanced > 3 s).
    assert guest_elapsed > 0
    assert guest_elapsed <= host - paused_for + 0.5, (guest_elapsed, host)

    # The aliases work the same way.
    assert q.ok("pause") == {}
    q.wait_event("STOP")
    assert q.ok("resume") == {}
    q.wait_event("RESUME")
    vm.run('echo "after=$((5*5))"', r"after=25")
    vm.child.sendline("poweroff")
    ev = q.wait_event("SHUTDOWN", timeout=60)
    assert ev["data"]["guest"] is True
    assert vm.wait_exit() == 0
    assert not ctl.exists(), "control socket left behind"


def test_quit_events_and_clients(guest, vms, workdir):
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl)
    q = QmpClient(ctl)
    # Nothing but qmp_capabilities before negotiation, as in QMP.
    err = q.execute("query-status")["error"]
    assert err["class"] == "CommandNotFound" and "qmp_capabilities" in err["desc"]
    q.negotiate()
    names = {c["name"] for c in q.ok("query-commands")}
    assert {"qmp_capabilities", "query-status", "stop", "cont", "quit", "save"} <= names

    # Protocol errors keep the connection; ids are echoed.
    q.send_raw(b"{not json\n")
    assert q.answer()["error"]["class"] == "GenericError"
    q.send_raw(b'{"execute": "frobnicate", "id": "x1"}\n')
    msg = q.answer()
    assert msg["id"] == "x1" and msg["error"]["class"] == "CommandNotFound"
    q.send_raw(b'{"execute": "query-status", "id": 42}\n')
    assert q.answer()["id"] == 42

    # A second client, and one that goes away mid-line, do not disturb.
    q2 = QmpClient(ctl).negotiate()
    q3 = QmpClient(ctl)
    q3.send_raw(b'{"execute": "qu')
    q3.close()

    # A second tern-vmm cannot take over a live control socket.
    assert_one_line_error(run_vmm("--control", ctl), "in use")

    vm.wait_ready()
    vm.child.sendline("reboot")
    ev = q.wait_event("RESET", timeout=BOOT_TIMEOUT)
    assert ev["data"]["guest"] is True
    vm.wait_ready()
    vm.run('echo "rebooted=$((2+2))"', r"rebooted=4")

    assert q.ok("quit") == {}
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert q2.wait_event("SHUTDOWN")["data"]["guest"] is False
    assert vm.wait_exit() == 0
    assert not ctl.exists(), "control socket left behind"


def test_start_paused(guest, vms, workdir):
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl, "--paused")
    q = QmpClient(ctl).negotiate()
    assert q.ok("query-status") == {"status": "prelaunch", "running": False}
    # Not a single instruction runs: the kernel prints nothing.
    with pytest.raises(pexpect.TIMEOUT):
        vm.expect(r"Linux version", timeout=2)
    assert q.ok("cont") == {}
    q.wait_event("RESUME")
    vm.wait_ready()
    vm.run('echo "started=$((6*7))"', r"started=42")
    assert q.ok("quit") == {}
    assert vm.wait_exit() == 0


def test_bad_control_options(guest, workdir):
    assert_one_line_error(run_vmm("--control", workdir / "no" / "such" / "ctl.sock"),
                          "control socket", "No such file")
    regular = workdir / "file"
    regular.write_text("keep me")
    assert_one_line_error(run_vmm("--control", regular), "not a socket")
    assert regular.read_text() == "keep me"
    assert_one_line_error(run_vmm("--control", "/tmp/" + "x" * 200), "too long")
    assert_one_line_error(run_vmm("--restore", workdir / "missing.snap"),
                          "missing.snap")
    assert_one_line_error(run_vmm("--paused"), "--paused", "--control")
    r = run_vmm("--help")
    assert "--control" in r.stdout and "--restore" in r.stdout and "--paused" in r.stdout


def test_save_and_restore(guest, vms, workdir):
    ctl = workdir / "ctl.sock"
    snap = workdir / "vm.snap"
    vm = vms("--control", ctl)
    q = QmpClient(ctl).negotiate()
    vm.wait_ready()
    vm.run('echo "saved-$((40+2))" > /tmp/note && echo wrote=$?', r"wrote=0")

    # Errors name the problem and leave the VM running.
    err = q.execute("save", file=str(workdir / "nodir" / "x.snap"))["error"]
    assert err["class"] == "GenericError" and "nodir" in err["desc"]
    err = q.execute("save", file=str(workdir))["error"]
    assert "directory" in err["desc"]
    assert q.ok("query-status")["status"] == "running"

    r = q.ok("save", timeout=120, file=str(snap))
    assert r["bytes"] == snap.stat().st_size > 1 << 20
    assert r["time-ms"] >= 0
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".vm.snap")] == []
    # Saving does not stop a running VM.
    assert q.ok("query-status")["status"] == "running"
    vm.run('echo "still=$((1+1))"', r"still=2")
    assert q.ok("quit") == {}
    assert vm.wait_exit() == 0

    # A new process continues where the snapshot was taken.
    ctl2 = workdir / "ctl2.sock"
    vm2 = vms("--restore", snap, "--control", ctl2, "--paused")
    q2 = QmpClient(ctl2).negotiate()
    assert q2.ok("query-status") == {"status": "paused", "running": False}
    assert q2.ok("cont") == {}
    vm2.run("cat /tmp/note", r"saved-42")
    vm2.run('echo "restored=$((6*7))"', r"restored=42")
    vm2.child.sendline("poweroff")
    assert vm2.wait_exit() == 0

    # Restoring without --paused runs at once.
    vm3 = vms("--restore", snap)
    vm3.run("cat /tmp/note", r"saved-42")
    vm3.child.sendline("poweroff")
    assert vm3.wait_exit() == 0

    # A damaged snapshot is refused with one clear line.
    data = bytearray(snap.read_bytes())
    bad = workdir / "bad.snap"
    bad.write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_vmm("--restore", bad), "bad.snap")
    bad.write_bytes(b"garbage" * 1000)
    assert_one_line_error(run_vmm("--restore", bad), "bad.snap")
    # A machine built differently is refused too.
    assert_one_line_error(run_vmm("--restore", snap, "--memory", "128"), "vm.snap")
