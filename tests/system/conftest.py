# SPDX-License-Identifier: MIT
"""Fixtures for system tests: real tern-vmm processes booting the real
Debian guest, driven through pipes. Every process is killed at the end."""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

import pexpect
import pexpect.popen_spawn
import pytest

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
