# SPDX-License-Identifier: MIT
"""The host toolstack end to end (docs/toolstack.md): ternd daemons on
loopback (distinct sockets, relocation ports and state directories) driven
by the tern CLI, with the real guest.

Covered: create, list (columns and values), info, the console (tern console
with Ctrl-] on a pseudo-terminal), pause/unpause, destroy, reboot, shutdown
(the power button), save and restore, migration to localhost, live
migration A->B with memstress verifying every page, offline migration,
A->B->C, and bad input: malformed configs, unknown domains, duplicate
names, no daemon, wrong ports, relocation off, hosts-allow, memory, a disk
absent on the destination, the destination daemon killed mid-migration,
ternd restarted under running domains, a crashed tern-vmm, and the
destination's pre-checks and timeouts spoken to by a raw relocation peer.
Every failure also checks that nothing changed: the source domain still
runs and the destination has nothing."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pexpect

from conftest import free_port, make_ext4
from toolstack import (MIGRATE_TIMEOUT, TERN, assert_cli_error, domain_config_text,
                       guest_uptime,
                       pid_alive, shell_answers, start_memstress, stop_memstress,
                       time_limit, ts, wait_for)  # noqa: F401  (ts is a fixture)

LIST_HEADER = ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]


# ---- helpers ---------------------------------------------------------------------------

def n_domains(info):
    """info's "domains": a count (or a list of them)."""
    d = info["domains"]
    return len(d) if isinstance(d, list) else d


def list_rows(d, *doms):
    """tern list's table: (header line, [row lines])."""
    lines = d.tern("list", *doms).stdout.splitlines()
    assert lines, "tern list printed nothing"
    return lines[0], [l for l in lines[1:] if l.strip()]


def check_row_alignment(header, row):
    """The right-aligned columns (ID, Mem, VCPUs, State) end where their
    heading ends, as in xm list."""
    hcols = [(m.group(0), m.end()) for m in re.finditer(r"\S+", header)]
    rcols = [m.end() for m in re.finditer(r"\S+", row)]
    assert len(rcols) == len(hcols), (header, row)
    for i in (1, 2, 3, 4):
        assert rcols[i] == hcols[i][1], f"column {hcols[i][0]} misaligned:\n{header}\n{row}"


def migrate(d, dom, host, *opts, live=True, port=None, check=True, timeout=MIGRATE_TIMEOUT):
    args = ["migrate"]
    if live:
        args.append("--live")
    if port is not None:
        args += ["--port", str(port)]
    args += list(opts) + [dom, host]
    return d.tern(*args, check=check, timeout=timeout)


def assert_only_on(dom, owner, *others, state="running"):
    """A domain name is never on two hosts."""
    owner.wait_state(dom, state, timeout=20)
    for o in others:
        assert o.domain(dom) is None, f"{dom} still listed on {o.name}: {o.list()}"


def assert_nothing_on(d):
    """The destination of a refused migration kept nothing."""
    wait_for(lambda: d.list() == [], 20, f"{d.name} to list nothing (has {d.list()})")
    wait_for(lambda: not d.vmm_pids(), 20, f"no tern-vmm left from {d.name}")


def assert_source_unchanged(src, dom, con, dom_id):
    st = src.wait_state(dom, "running", timeout=20)
    assert st["id"] == dom_id, st
    shell_answers(con)


def spawn_tern(d, *args, timeout=60):
    """tern on a pseudo-terminal (pexpect), as a person runs it."""
    env = dict(os.environ)
    env.pop("TERN_SOCKET", None)
    env["TERM"] = "xterm"
    return pexpect.spawn(str(TERN), ["--socket", str(d.sock)] + [str(a) for a in args],
                         timeout=timeout, env=env, dimensions=(40, 120))


def console_session(d, dom, expect_ready=False):
    """tern console DOM on a terminal: the guest answers, Ctrl-] detaches,
    and the domain keeps running. expect_ready: the replayed recent output
    holds the guest's ready marker (a guest that booted a moment ago)."""
    child = spawn_tern(d, "console", dom)
    try:
        if expect_ready:
            child.expect(r"tern-guest: ready")
        child.sendline('echo "con=$((40+2))"')
        child.expect(r"con=42")
        child.send("\x1d")
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus, child.before)
    assert d.domain(dom)["state"] == "running"


# ---- create, list, console, pause, destroy -------------------------------------------

@time_limit(240)
def test_create_list_console_pause_destroy(ts):
    a = ts.daemon("a", memory=1024)
    assert a.list() == []
    info = json.loads(a.tern("--json", "info").stdout)
    assert info["memory-total"] == 1024 and info["memory-free"] == 1024, info
    assert n_domains(info) == 0, info
    for key in ("version", "host", "machine", "isa"):
        assert info[key], (key, info)
    reloc = info["relocation"]
    assert reloc["server"] is True and reloc["port"] == a.port, info
    assert reloc["address"] == "127.0.0.1", info
    human = a.tern("info").stdout
    assert str(a.port) in human and "1024" in human, human

    # create -c: the console from the first line of the boot; Ctrl-] detaches
    cfg = ts.domcfg("vm1")
    child = spawn_tern(a, "create", cfg, "-c", timeout=120)
    try:
        child.expect(r"vm1.*\bid=1\b")
        child.expect(r"tern-guest: ready")
        child.sendline('echo "boot=$((40+2))"')
        child.expect(r"boot=42")
        child.send("\x1d")
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.before)
    # tern console: the recent output (with the ready marker) and a shell
    console_session(a, "vm1", expect_ready=True)
    con = a.console("vm1")
    shell_answers(con)

    # list: xm's columns, one row with the right values
    header, rows = list_rows(a)
    assert header.split() == LIST_HEADER, header
    assert len(rows) == 1, rows
    f = rows[0].split()
    assert f[:5] == ["vm1", "1", "128", "1", "running"], rows[0]
    assert float(f[5]) > 0.5, rows[0]         # it booted: CPU time was used
    check_row_alignment(header, rows[0])
    one = list_rows(a, "vm1")[1]
    assert len(one) == 1 and one[0].split()[:5] == f[:5], one
    assert a.tern("list", env_socket=True).stdout.splitlines()[0] == header  # TERN_SOCKET
    doms = a.list()
    assert len(doms) == 1
    d = doms[0]
    assert (d["name"], d["id"], d["memory"], d["vcpus"], d["state"]) == \
        ("vm1", 1, 128, 1, "running"), d
    assert isinstance(d["time"], (int, float)) and d["time"] > 0.5, d
    info = json.loads(a.tern("--json", "info").stdout)
    assert info["memory-free"] == 1024 - 128 and n_domains(info) == 1, info

    qd = a.query_domain("vm1")
    assert pid_alive(qd["pid"]) and a.vmm_pids() == [qd["pid"]], (qd, a.vmm_pids())
    assert str(a.state) in qd["console"] and str(a.state) in qd["control"], qd
    assert 'name = "vm1"' in qd["config"], qd
    assert (a.state / "dom" / "1" / "domain.json").exists()

    # unknown domains: one clear line each, nothing changes
    for verb in (["pause"], ["unpause"], ["destroy"], ["shutdown"], ["reboot"],
                 ["console"], ["list"]):
        assert_cli_error(a.tern(*verb, "nosuch", check=False), "nosuch")
    assert_cli_error(a.tern("save", "nosuch", ts.workdir / "x.sav", check=False), "nosuch")
    assert_cli_error(migrate(a, "nosuch", "127.0.0.1", port=a.port, check=False), "nosuch")
    assert_cli_error(a.tern("destroy", "99", check=False), "99")
    # a second domain of the same name: refused, the first one untouched
    r = a.tern("create", cfg, check=False)
    assert_cli_error(r, "vm1")
    assert re.search(r"already|exists|in use|duplicate", r.stderr, re.I), r.stderr
    assert [x["id"] for x in a.list()] == [1] and a.vmm_pids() == [qd["pid"]]

    # pause: the guest and its clock stand still; unpause: it goes on
    u0, t0 = guest_uptime(con), time.monotonic()
    a.tern("pause", "vm1")
    paused = a.domain("vm1")
    assert paused["state"] == "paused", paused
    pos = len(con.buf)
    con.send('echo "p=$((50+5))"\n')
    assert con.silent_for(rb"p=55", 3, pos), "a paused guest answered"
    assert a.domain("vm1")["time"] - paused["time"] < 0.5, "a paused domain used CPU"
    a.tern("unpause", "vm1")
    assert a.domain("vm1")["state"] == "running"
    con.expect(rb"p=55", timeout=30, since=pos)
    u1, t1 = guest_uptime(con), time.monotonic()
    assert u1 > u0, (u0, u1)
    assert u1 - u0 < (t1 - t0) - 2.0, f"guest clock ran while paused: {u1 - u0:.2f} " \
        f"guest seconds in {t1 - t0:.2f} s"

    # destroy: gone at once, its process too
    pid = qd["pid"]
    a.tern("destroy", "vm1")
    assert a.list() == []
    wait_for(lambda: not pid_alive(pid), 10, "the destroyed domain's tern-vmm to exit")
    assert a.vmm_pids() == []
    assert json.loads(a.tern("--json", "info").stdout)["memory-free"] == 1024

    # ids are never reused; create -p starts paused; a numeric id works
    r = a.tern("create", cfg, "-p")
    assert re.search(r"\bid=2\b", r.stdout), r.stdout
    assert a.domain("vm1")["state"] == "paused" and a.domain("2")["name"] == "vm1"
    a.tern("destroy", "2")
    assert a.list() == []
    wait_for(lambda: not a.vmm_pids(), 10, "no tern-vmm left")


# ---- bad input without a guest ---------------------------------------------------------

@time_limit(120)
def test_bad_input(ts):
    a = ts.daemon("a")
    bad = {
        # text, words the one error line must contain (besides the path)
        "syntax": ('name = "bad"\nvcpus = 1\nmemory = "lots\n', [":3:"]),
        "memory": ('name = "bad"\n# the size\nmemory = 8\n', [":3:", "key 'memory'"]),
        "vcpus": ('name = "bad"\nmemory = 128\nvcpus = 4\n', [":3:", "key 'vcpus'"]),
        "name": ('name = "-x"\nmemory = 128\n', [":1:", "key 'name'"]),
        "noname": ("memory = 128\n", ["key 'name'", "missing"]),
        "disk": ("name = \"bad\"\nmemory = 128\ndisk = [ 'file:relative.img,vda,w' ]\n",
                 [":3:", "key 'disk'"]),
        "action": ('name = "bad"\nmemory = 128\non_crash = "explode"\n',
                   [":3:", "key 'on_crash'"]),
    }
    for what, (text, words) in bad.items():
        path = ts.workdir / f"{what}.cfg"
        path.write_text(text)
        r = a.tern("create", path, check=False)
        assert_cli_error(r, str(path), *words)
        assert a.list() == [], (what, a.list())
        assert a.vmm_pids() == [], what
    missing = ts.workdir / "missing.cfg"
    assert_cli_error(a.tern("create", missing, check=False), str(missing))

    # no daemon: a missing socket, and a stale one (daemon killed)
    nosock = ts.workdir / "none.sock"
    ghost = ts.daemon("ghost")
    ghost.kill()
    for sock in (nosock, ghost.sock):
        r = subprocess.run([str(TERN), "--socket", str(sock), "list"], capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert_cli_error(r, f"cannot connect to ternd at {sock}", "(is ternd running?)")
    r = subprocess.run([str(TERN), "list"], capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL, env={**os.environ, "TERN_SOCKET": str(nosock)})
    assert_cli_error(r, f"cannot connect to ternd at {nosock}: No such file or directory",
                     "(is ternd running?)")

    # usage errors
    for argv in ([], ["frobnicate"], ["migrate", "vm1"], ["create"]):
        r = subprocess.run([str(TERN), "--socket", str(a.sock)] + argv, capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and r.stderr.strip(), (argv, r)

    # host config: a syntax error names the line and ternd does not start
    for name, text, line in (
            ("badport", "# ports\n(xend-relocation-server yes)\n(xend-relocation-port 99999)\n", 3),
            ("unbalanced", "(xend-relocation-port 8002)\n(xend-relocation-server yes\n", 2),
            ("badbool", "\n\n\n(xend-relocation-server maybe)\n", 4),
            ("unterminated", "(xend-relocation-hosts-allow '^a\n", 1)):
        d = ts.daemon(name, config_text=text, start=False)
        r = subprocess.run(d.argv(), capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0, (name, r)
        assert f"{d.config}:{line}:" in r.stderr + r.stdout, (name, r.stderr)
        assert not d.sock.exists(), name
    # an unknown key is a warning naming its line; the daemon runs
    d = ts.daemon("warned", config_text="(xend-relocation-server no)\n(xend-port 8000)\n"
                                        "(logfile /var/log/xen/xend.log)\n(frobnicate 1)\n")
    assert d.tern("list").returncode == 0
    log = d.log_tail()
    assert f"{d.config}:4:" in log and "frobnicate" in log, log
    assert f"{d.config}:2:" not in log and f"{d.config}:3:" not in log, log  # known keys
    assert json.loads(d.tern("--json", "info").stdout)["relocation"]["server"] is False
    # ternd itself refuses an unreadable config file
    d = ts.daemon("noconf", config_text="", start=False)
    d.config.unlink()
    d.config.mkdir()
    r = subprocess.run(d.argv(), capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and str(d.config) in r.stderr + r.stdout, r


# ---- reboot and shutdown ---------------------------------------------------------------

@time_limit(200)
def test_reboot_and_shutdown(ts):
    a = ts.daemon("a")
    dom_id, con = ts.create(a, "vm1")
    shell_answers(con)
    # reboot: the machine resets and boots again in the same domain
    pos = len(con.buf)
    a.tern("reboot", "vm1")
    try:
        con.wait_ready(since=pos)
    except EOFError:
        # A reset may come with a fresh console connection.
        con = a.console("vm1")
        con.wait_ready(since=0)
    shell_answers(con)
    assert a.domain("vm1")["id"] == dom_id and a.domain("vm1")["state"] == "running"
    # shutdown: the power button; the guest powers off and the domain goes
    pid = a.query_domain("vm1")["pid"]
    a.tern("shutdown", "vm1")
    a.wait_gone("vm1", timeout=90)
    wait_for(lambda: not pid_alive(pid), 20, "tern-vmm to exit after the power-off")
    assert a.vmm_pids() == []


# ---- save, restore, migration to localhost --------------------------------------------

@time_limit(240)
def test_save_restore_and_localhost(ts):
    # The seeds' hosts-allow: the peer 127.0.0.1 is allowed by its name.
    a = ts.daemon("a", hosts_allow=r"^localhost$ ^localhost\.localdomain$")
    dom_id, con = ts.create(a, "vm1")
    con.run('echo "saved-$((30+3))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    u0 = guest_uptime(con)
    pid = a.query_domain("vm1")["pid"]
    snap = ts.workdir / "vm1.sav"
    # a save that cannot write its file changes nothing
    r = a.tern("save", "vm1", str(ts.workdir / "no-such-dir" / "x.sav"), check=False)
    assert_cli_error(r, "cannot save domain 'vm1'", "no-such-dir")
    assert a.domain("vm1")["state"] == "running" and pid_alive(pid)
    shell_answers(con)
    # a relative FILE is the CLI's working directory's
    r = a.tern("save", "vm1", snap.name, cwd=ts.workdir)
    assert snap.stat().st_size > 1 << 20, snap.stat()
    late = []
    if a.list() != []:
        # Checked at the end, so that the rest still runs.
        late.append(f"`tern save` returned while the domain was still listed: {a.list()}")
        a.wait_gone("vm1", timeout=5)
    wait_for(lambda: not pid_alive(pid), 20, "the saved domain's tern-vmm to exit")
    con.close()

    r = a.tern("restore", snap)
    m = re.search(r"\bid=(\d+)", r.stdout)
    assert "vm1" in r.stdout and m and int(m.group(1)) > dom_id, r.stdout
    assert a.domain("vm1")["state"] == "running"
    con = a.console("vm1")
    con.run("cat /tmp/note", r"saved-33")
    assert guest_uptime(con) >= u0
    shell_answers(con)
    # restoring the same file again while vm1 runs: a duplicate name
    assert_cli_error(a.tern("restore", snap, check=False), "vm1")
    assert len(a.list()) == 1

    # migration to the same host, live, with memstress checking every page
    start_memstress(con)
    migrate(a, "vm1", "localhost", port=a.port)
    assert_only_on("vm1", a)
    assert len(a.list()) == 1 and len(a.vmm_pids()) == 1, (a.list(), a.vmm_pids())
    con.close()
    con = a.console("vm1")
    stop_memstress(con)
    con.run("cat /tmp/note", r"saved-33")
    assert not late, "\n".join(late)


# ---- migration between daemons ------------------------------------------------------

@time_limit(300)
def test_live_offline_three_daemons(ts):
    a, b, c = ts.daemon("a"), ts.daemon("b"), ts.daemon("c")
    dom_id, con = ts.create(a, "vm1")
    con.run('echo "moved-$((20+1))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    start_memstress(con)
    up = guest_uptime(con)

    # A -> B live, no terminal: plain progress lines and a summary
    r = migrate(a, "vm1", "127.0.0.1", port=b.port)
    assert "vm1" in r.stdout and re.search(r"downtime", r.stdout), r.stdout
    assert_only_on("vm1", b, a, c)
    assert a.vmm_pids() == [] and len(b.vmm_pids()) == 1
    late = []          # checked at the end, so that the rest still runs
    q = a.call("query-migrate", domain="vm1")
    assert "return" in q and q["return"]["status"] == "completed", q
    q = q["return"]
    assert q["live"] is True and q["transferred"] > 0 and q["total-time"] > 0, q
    if not 0 <= q.get("downtime", -1) <= q["total-time"]:
        late.append(f"completed live query-migrate without a sane downtime: {q}")
    if q["remaining"] != 0 or q["transferred"] < 32 << 20:   # memstress alone: 32 MiB
        late.append(f"completed live query-migrate with stale numbers: {q}")
    con.close()
    console_session(b, "vm1")
    con = b.console("vm1")
    stop_memstress(con)
    now = guest_uptime(con)
    assert now >= up
    up = now
    con.run("cat /tmp/note", r"moved-21")

    # B -> C offline, on a terminal: a progress display and the summary
    start_memstress(con)
    con.close()
    child = spawn_tern(b, "migrate", "vm1", "127.0.0.1", "--port", c.port,
                       timeout=MIGRATE_TIMEOUT)
    out = child.read().decode(errors="replace")
    child.close()
    assert child.exitstatus == 0, out
    assert re.search(r"\[[#-]{5,}\]\s*\d+%", out), out          # the bar
    summary = re.search(r"vm1.*total ([\d.]+) s.*downtime (\d+) ms", out)
    assert summary, out
    assert_only_on("vm1", c, a, b)
    q = b.call("query-migrate", domain="vm1")["return"]
    assert q["status"] == "completed" and q["live"] is False, q
    if q["remaining"] != 0 or q["transferred"] < 32 << 20:
        late.append(f"completed offline query-migrate with stale numbers: {q}")
    # offline: the guest stood still for (nearly) the whole move
    if "downtime" not in q or q["downtime"] < q["total-time"] * 0.5 - 50:
        late.append(f"offline migration's query-migrate downtime: {q}")
    total_s, down_ms = float(summary.group(1)), int(summary.group(2))
    if down_ms < total_s * 500 - 50:
        late.append(f"offline summary says downtime {down_ms} ms of {total_s} s: "
                    f"{summary.group(0)!r}")
    con = c.console("vm1")
    stop_memstress(con)
    assert guest_uptime(con) >= up
    con.run("cat /tmp/note", r"moved-21")
    assert a.vmm_pids() == [] and b.vmm_pids() == [] and len(c.vmm_pids()) == 1
    assert not late, "\n".join(late)


# ---- refusals: nothing changes ------------------------------------------------------

@time_limit(300)
def test_refused_migrations_change_nothing(ts):
    shared = ts.workdir / "shared"
    shared.mkdir()
    disk = shared / "vm1.img"
    make_ext4(disk, 16)
    a = ts.daemon("a")
    off = ts.daemon("off", relocation=False)
    deny = ts.daemon("deny", hosts_allow=r"^10\.99\.")
    small = ts.daemon("small", memory=64)
    nodisk = ts.daemon("nodisk", tmpfs=shared)
    ok = ts.daemon("ok")
    dom_id, con = ts.create(a, "vm1", disks=[f"file:{disk},vda,w"])
    con.run('echo "disk-$((2+3))" > /mnt/note && sync && echo "wrote=$?"', r"wrote=0")

    def refused(dest, port, *words, host="127.0.0.1", live=True):
        r = migrate(a, "vm1", host, port=port, live=live, check=False)
        line = assert_cli_error(r, *words)
        assert_source_unchanged(a, "vm1", con, dom_id)
        if dest is not None:
            assert_nothing_on(dest)
        return line

    # relocation off there, and a wrong port: nobody listens
    refused(off, off.port, f"cannot connect to 127.0.0.1:{off.port}", "Connection refused",
            "(is the relocation server enabled there?)")
    wrong = free_port()
    refused(ok, wrong, f"127.0.0.1:{wrong}", "Connection refused")
    # hosts-allow: the peer's address (and name) do not match
    refused(deny, deny.port, "relocation from 127.0.0.1 is not allowed",
            "xend-relocation-hosts-allow")
    # not enough free memory there
    line = refused(small, small.port, "memory", live=False)
    assert re.search(r"\b(128|64)\b", line), line
    # the disk is absent on the destination (an empty tmpfs over its directory)
    refused(nodisk, nodisk.port, str(disk))
    # ... and present with the same size but not the same image
    pid = nodisk.proc.pid
    subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "sh", "-c",
                    f"head -c {disk.stat().st_size} /dev/zero > {disk}"], check=True,
                   timeout=30)
    refused(nodisk, nodisk.port, str(disk))
    # a domain of that name already runs there
    ok.tern("create", ts.domcfg("vm1", filename="other-vm1.cfg"), "-p")
    other = ok.domain("vm1")
    r = migrate(a, "vm1", "127.0.0.1", port=ok.port, check=False)
    assert_cli_error(r, "vm1")
    assert_source_unchanged(a, "vm1", con, dom_id)
    assert [(x["id"], x["state"]) for x in ok.list()] == [(other["id"], "paused")], ok.list()
    ok.tern("destroy", "vm1")
    assert_nothing_on(ok)

    # after all that, the domain still moves (and its disk with it)
    migrate(a, "vm1", "127.0.0.1", port=ok.port)
    assert_only_on("vm1", ok, a, off, deny, small, nodisk)
    con.close()
    con = ok.console("vm1")
    con.run("cat /mnt/note", r"disk-5")


@time_limit(240)
def test_destination_killed_mid_migration(ts):
    a, b = ts.daemon("a"), ts.daemon("b")
    dom_id, con = ts.create(a, "vm1")
    start_memstress(con)
    cli = subprocess.Popen([str(TERN), "--socket", str(a.sock), "migrate", "--live",
                            "--bandwidth", "4", "--port", str(b.port), "vm1", "127.0.0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL)
    try:
        incoming = wait_for(lambda: b.domain("vm1"), 60, "vm1 to arrive on b", interval=0.05)
        assert incoming["state"] == "incoming", incoming
        assert a.domain("vm1")["state"] == "migrating", a.domain("vm1")
        time.sleep(0.5)
        b_vmms = b.vmm_pids()
        assert len(b_vmms) == 1, b_vmms
        b.kill()
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 1, (cli.returncode, out, err)
    assert err.startswith("tern: ") and "vm1" in err, err
    # its incoming tern-vmm died with it; the source runs on, memory intact
    wait_for(lambda: not any(pid_alive(p) for p in b_vmms), 20,
             "b's incoming tern-vmm to die with b")
    assert_source_unchanged(a, "vm1", con, dom_id)
    stop_memstress(con)
    # b restarted: nothing of the half-received domain; a new migration works
    b.start()
    assert_nothing_on(b)
    start_memstress(con)
    migrate(a, "vm1", "127.0.0.1", port=b.port)
    assert_only_on("vm1", b, a)
    con.close()
    con = b.console("vm1")
    stop_memstress(con)


@time_limit(240)
def test_ternd_restart_finds_domains(ts):
    a, b = ts.daemon("a"), ts.daemon("b")
    dom_id, con = ts.create(a, "vm1")
    pid = a.query_domain("vm1")["pid"]
    con.run('echo "kept-$((4+4))" > /tmp/note && echo "wrote=$?"', r"wrote=0")
    for hard in (False, True):
        if hard:
            a.kill()
        else:
            assert a.stop() == 0, a.log_tail()
        assert pid_alive(pid), "the domain died with its daemon"
        shell_answers(con)
        a.start()
        d = a.domain("vm1")
        assert d is not None and d["id"] == dom_id and d["state"] == "running", a.list()
        assert a.query_domain("vm1")["pid"] == pid
        con.close()
        con = a.console("vm1")
        shell_answers(con)
    # still managed: pause/unpause, a new domain gets a new id, migrate, destroy
    a.tern("pause", "vm1")
    assert a.domain("vm1")["state"] == "paused"
    a.tern("unpause", "vm1")
    a.tern("create", ts.domcfg("vm2"), "-p")
    assert a.domain("vm2")["id"] > dom_id
    a.tern("destroy", "vm2")
    start_memstress(con)
    migrate(a, "vm1", "127.0.0.1", port=b.port)
    assert_only_on("vm1", b, a)
    wait_for(lambda: not pid_alive(pid), 20, "the source tern-vmm to exit")
    con.close()
    con = b.console("vm1")
    stop_memstress(con)
    con.run("cat /tmp/note", r"kept-8")
    bpid = b.query_domain("vm1")["pid"]
    b.tern("destroy", "vm1")
    assert b.list() == []
    wait_for(lambda: not pid_alive(bpid), 10, "the destroyed tern-vmm to exit")


@time_limit(120)
def test_crashed_domain(ts):
    a = ts.daemon("a")
    for name, action in (("keep", "preserve"), ("gone", "destroy"), ("again", "restart")):
        a.tern("create", ts.domcfg(name, on_crash=action), "-p")
    pids = {n: a.query_domain(n)["pid"] for n in ("keep", "gone", "again")}
    # ternd does not restart a domain that crashes within 10 s of its start
    # (a crash loop, as xend's "restarting too fast"): let that pass.
    time.sleep(10.5)
    for n, p in pids.items():
        os.kill(p, signal.SIGKILL)
    a.wait_state("keep", "crashed", timeout=20)
    a.wait_gone("gone", timeout=20)
    def restarted():
        d = a.domain("again")
        if d is None or d["state"] not in ("running", "paused"):
            return None
        return a.query_domain("again")["pid"] != pids["again"] and d
    again = wait_for(restarted, 30, "the on_crash=restart domain to run again")
    assert pid_alive(a.query_domain("again")["pid"]), again
    # ternd carries on
    assert a.running()
    info = json.loads(a.tern("--json", "info").stdout)
    assert n_domains(info) == len(a.list()) == 2, info
    assert not pid_alive(pids["keep"])
    assert a.domain("keep")["state"] == "crashed"
    a.tern("destroy", "keep")
    a.tern("destroy", "again")
    assert a.list() == []
    wait_for(lambda: not a.vmm_pids(), 10, "no tern-vmm left")


# ---- the relocation protocol, spoken by a hostile or odd peer ---------------------

def reloc_connect(d, timeout=10):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    f = s.makefile("rwb")
    line = f.readline(1 << 20)
    assert line.endswith(b"\n"), line
    return s, f, json.loads(line)


def reloc_close(s, f):
    """Closes the connection for real (a makefile() keeps the fd open)."""
    for x in (f, s):
        try:
            x.close()
        except OSError:
            pass


def reloc_request(f, req):
    f.write(json.dumps(req).encode() + b"\n")
    f.flush()
    line = f.readline(1 << 20)
    assert line, "the destination closed the connection without an answer"
    return json.loads(line)


@time_limit(120)
def test_relocation_protocol_checks(ts):
    """The destination's checks before any memory moves (docs/toolstack.md,
    Relocation, step 4), each one clear reason; a cut connection after the
    prepare removes the incoming domain; junk from a peer harms nothing."""
    b = ts.daemon("b", timeout=3)
    s, f, greet = reloc_connect(b)
    g = greet["tern-relocation"]
    assert g["version"] and g["host"] and g["instance"], greet
    reloc_close(s, f)
    info = b.call("info")["return"]
    major, minor, micro = (int(x) for x in info["version"].split("."))

    def prepare(**over):
        memory = over.pop("memory", 128)
        args = {"name": "vmx", "config": domain_config_text("vmx", memory=memory),
                "memory": memory, "version": info["version"], "machine": info["machine"],
                "isa": info["isa"], "live": True, "disks": [], "instance": "test-peer"}
        args.update(over)
        return {"execute": "migrate-prepare", "arguments": args}

    cases = [
        (prepare(version=f"{major + 1}.0.0"), [f"{major + 1}.0.0"]),
        (prepare(machine="pc-q35-9.0"), ["pc-q35-9.0"]),
        (prepare(isa=info["isa"] + "_zzfake"), ["zzfake"]),
        (prepare(memory=4096), ["memory"]),
        (prepare(config='name = "vmx"\nmemory = lots\n'), ["memory"]),
        (prepare(disks=[{"path": "/nonexistent/tern/x.img", "size": 65536,
                         "id": "0123456789abcdef"}]), ["/nonexistent/tern/x.img"]),
        ({"execute": "migrate-prepare"}, []),
        ({"execute": "format-disk", "arguments": {}}, []),
    ]
    for req, words in cases:
        s, f, _ = reloc_connect(b)
        try:
            ans = reloc_request(f, req)
        finally:
            reloc_close(s, f)
        assert "error" in ans and ans["error"]["desc"], (req, ans)
        for w in words:
            assert w in ans["error"]["desc"], (w, ans)
        assert b.list() == [] and b.vmm_pids() == [], (req, b.list())

    # accepted, then the peer goes away before sending the VM: rolled back
    s, f, _ = reloc_connect(b)
    older = f"{major}.{minor}.{micro - 1}" if micro else f"{major}.{minor}.0"
    ans = reloc_request(f, prepare(version=older))
    assert "return" in ans and ans["return"]["id"] >= 1, ans
    b.wait_state("vmx", "incoming", timeout=10)
    assert len(b.vmm_pids()) == 1
    reloc_close(s, f)
    b.wait_gone("vmx", timeout=30)
    wait_for(lambda: not b.vmm_pids(), 20, "the incoming tern-vmm to exit")

    # accepted, then the peer stays silent: rolled back after a timeout
    # (checked at the end; the other cases run meanwhile)
    silent_s, silent_f, _ = reloc_connect(b)
    ans = reloc_request(silent_f, prepare(name="vmy", config=domain_config_text("vmy")))
    assert "return" in ans, ans
    silent_t0 = time.monotonic()
    b.wait_state("vmy", "incoming", timeout=10)

    # junk: not JSON, an endless line, silence; the daemon keeps answering
    s, f, _ = reloc_connect(b)
    f.write(b"this is not json\n")
    f.flush()
    line = f.readline(1 << 20)
    assert not line or "error" in json.loads(line), line
    reloc_close(s, f)
    s, f, _ = reloc_connect(b)
    try:
        s.settimeout(10)
        chunk = b"x" * 65536
        for _ in range(64):                     # 4 MiB without a newline
            s.sendall(chunk)
    except OSError:
        pass                                    # closed on us: fine
    finally:
        reloc_close(s, f)
    quiet, quiet_f, _ = reloc_connect(b)
    assert b.tern("list").returncode == 0       # not blocked by the silent peer
    t0 = time.monotonic()
    quiet.settimeout(20)
    try:
        while quiet.recv(4096):
            pass
    except OSError:
        pass
    assert time.monotonic() - t0 < 15, "a silent peer was not timed out"
    reloc_close(quiet, quiet_f)
    assert b.running()
    b.wait_gone("vmy", timeout=max(1, 45 - (time.monotonic() - silent_t0)))
    wait_for(lambda: not b.vmm_pids(), 20, "the silent incoming tern-vmm to exit")
    reloc_close(silent_s, silent_f)
    assert b.list() == []
    s, f, greet = reloc_connect(b)
    assert "tern-relocation" in greet
    reloc_close(s, f)
