# SPDX-License-Identifier: MIT
"""The board's power button: QMP system_powerdown presses it (virtio-input,
KEY_POWER), the guest's acpid powers the guest off cleanly, and tern-vmm
exits 0 with SHUTDOWN reason guest-shutdown."""
import subprocess
import time

from conftest import QmpClient, make_ext4

POWERDOWN_TIMEOUT = 20


def fs_state(disk):
    """The ext4 superblock's state as dumpe2fs reports it ("clean" ...)."""
    out = subprocess.run(["dumpe2fs", "-h", str(disk)], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Filesystem state:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no state in dumpe2fs output:\n{out}")


def test_system_powerdown_powers_guest_off(guest, vms, workdir):
    disk = workdir / "disk.img"
    make_ext4(disk)
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl, "--disk", disk)
    q = QmpClient(ctl).negotiate()
    vm.wait_ready()
    # The disk is still vda, mounted; the button is an input device.
    vm.run("grep -c '^/dev/vda /mnt ' /proc/mounts; echo mounted=$?",
           r"mounted=0")
    vm.run("cat /sys/class/input/input*/name", r"tern power button")
    # Written but not synced: the power button path must flush it.
    vm.run("echo pressed-$((6*7)) > /mnt/note; echo wrote=$?", r"wrote=0")

    t0 = time.monotonic()
    assert q.ok("system_powerdown") == {}
    ev = q.wait_event("SHUTDOWN", timeout=POWERDOWN_TIMEOUT)
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert vm.wait_exit(timeout=POWERDOWN_TIMEOUT) == 0
    assert time.monotonic() - t0 < POWERDOWN_TIMEOUT
    # The guest said why it went down.
    vm.expect("tern-guest: power button pressed, powering off", timeout=5)
    assert not ctl.exists(), "control socket left behind"

    # Clean: the file made it to the image, and the filesystem was unmounted.
    note = subprocess.run(["debugfs", "-R", "cat /note", str(disk)],
                          capture_output=True, text=True, check=True).stdout
    assert note.strip() == "pressed-42"
    assert fs_state(disk) == "clean"


def test_powerdown_while_paused_acts_on_resume(guest, vms, workdir):
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl)
    q = QmpClient(ctl).negotiate()
    vm.wait_ready()
    vm.run('echo "up=$((2+3))"', r"up=5")
    assert q.ok("stop") == {}
    q.wait_event("STOP")
    # Pressed while paused: accepted, but nothing happens until the guest
    # runs again.
    assert q.ok("system_powerdown") == {}
    time.sleep(2)
    assert vm.proc.poll() is None
    assert q.ok("query-status") == {"status": "paused", "running": False}
    assert not [e for e in q.events if e["event"] == "SHUTDOWN"], q.events
    assert q.ok("cont") == {}
    ev = q.wait_event("SHUTDOWN", timeout=POWERDOWN_TIMEOUT)
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert vm.wait_exit(timeout=POWERDOWN_TIMEOUT) == 0
    vm.expect("tern-guest: power button pressed", timeout=5)


def test_repeated_presses_power_off_once(guest, vms, workdir):
    """Presses in quick succession: accepted, one clean exit, no hang."""
    ctl = workdir / "ctl.sock"
    vm = vms("--control", ctl)
    q = QmpClient(ctl).negotiate()
    vm.wait_ready()
    for _ in range(3):
        assert q.ok("system_powerdown") == {}
    ev = q.wait_event("SHUTDOWN", timeout=POWERDOWN_TIMEOUT)
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert vm.wait_exit(timeout=POWERDOWN_TIMEOUT) == 0
