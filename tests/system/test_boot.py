# SPDX-License-Identifier: MIT
"""tern-vmm boots Debian's riscv64 kernel and busybox to a working shell."""
import subprocess

from conftest import assert_one_line_error, make_ext4, run_vmm


def test_boot_to_shell_and_poweroff(guest, vms):
    vm = vms("--memory", "256")
    vm.wait_ready()
    vm.run('echo "arch=$(uname -m)"', r"arch=riscv64")
    vm.run('echo "answer=$((6*7))"', r"answer=42")
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_disk_survives_reboot_of_vm(guest, vms, workdir):
    disk = workdir / "disk.img"
    make_ext4(disk)

    vm = vms("--disk", disk)
    vm.wait_ready()
    vm.run("grep -c ' /mnt ' /proc/mounts; echo mounted=$?", r"mounted=0")
    vm.run("echo tern-was-here-$((40+2)) > /mnt/note && sync && echo wrote=$?",
           r"wrote=0")
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0

    vm = vms("--disk", disk)
    vm.wait_ready()
    vm.run("cat /mnt/note", r"tern-was-here-42")
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_readonly_disk_refuses_writes(guest, vms, workdir):
    disk = workdir / "ro.img"
    make_ext4(disk)
    vm = vms("--disk", f"{disk},ro")
    vm.wait_ready()
    vm.run("cat /sys/block/vda/ro", r"\r?\n1\r?\n")
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_bad_input_is_refused_clearly(guest, workdir):
    junk = workdir / "junk"
    junk.write_bytes(b"\x7fELF not a riscv image" * 100)
    assert_one_line_error(run_vmm("--kernel", workdir / "none"), "kernel", "none")
    assert_one_line_error(run_vmm("--kernel", junk), "not a RISC-V")
    assert_one_line_error(run_vmm("--initrd", workdir / "none"), "initrd")
    assert_one_line_error(run_vmm("--disk", workdir / "nodisk"), "nodisk")
    assert_one_line_error(run_vmm("--memory", "4"), "too small")
    assert_one_line_error(run_vmm("--memory", "99999999"), "more than this host")
    assert_one_line_error(run_vmm("--memory", "lots"), "lots")
    assert_one_line_error(run_vmm("--frobnicate"), "--frobnicate")
    assert_one_line_error(run_vmm("--console", "tcp:1"), "console")
    assert_one_line_error(run_vmm("--disk", f"{junk},sideways"), "sideways")
    # Guest memory too small for this kernel and initrd: refused, not crashed.
    assert_one_line_error(run_vmm("--memory", "32"), "memory")


def test_help_and_version():
    r = run_vmm("--help")
    assert r.returncode == 0 and "--kernel" in r.stdout and "Ctrl-A x" in r.stdout
    r = run_vmm("--version")
    assert r.returncode == 0 and r.stdout.startswith("tern-vmm ")


def test_guest_reboot_boots_again(guest, vms, workdir):
    disk = workdir / "disk.img"
    make_ext4(disk)
    vm = vms("--disk", disk)
    vm.wait_ready()
    vm.run("echo before-reboot > /mnt/r && sync && echo synced=$?", r"synced=0")
    vm.child.sendline("reboot")
    vm.wait_ready()  # the same process boots the guest a second time
    vm.run("cat /mnt/r", r"before-reboot")
    vm.child.sendline("poweroff")
    assert vm.wait_exit() == 0


def test_guest_program_computes_what_the_host_computes(guest, vms, workdir):
    """cpubench (integer, memory, F and D arithmetic, atomics, the vDSO clock)
    prints the same checksum in the guest as a native build on the host."""
    from conftest import ROOT
    native = workdir / "cpubench"
    subprocess.run(["gcc", "-O2", "-ffp-contract=off", "-o", str(native),
                    str(ROOT / "guest/helpers/cpubench.c"), "-lm"], check=True)
    want = subprocess.run([str(native)], capture_output=True, text=True,
                          timeout=120, check=True).stdout
    checksum = want.split("checksum=")[1].split()[0]

    vm = vms("--append", "console=ttyS0 tern.run=/bin/cpubench")
    vm.wait_ready()
    vm.expect(r"cpubench: ok checksum=([0-9a-f]+)", timeout=120)
    assert vm.child.match.group(1).decode() == checksum
    assert vm.wait_exit() == 0


def test_guest_failure_code_becomes_exit_status(guest, vms):
    """The syscon's FAIL command (0x3333, code in bits 31:16) ends the VM
    with that code as tern-vmm's exit status, as QEMU's virt board does."""
    vm = vms()
    vm.wait_ready()
    vm.child.sendline("devmem 0x100000 32 0x00053333")
    assert vm.wait_exit() == 5
