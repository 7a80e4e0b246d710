# SPDX-License-Identifier: MIT
"""Socket helpers shared by the system tests (through conftest.py) and the
benchmarks (bench/ puts this directory on sys.path). Nothing here needs
pytest."""
import socket
import time


def connect_unix(path, timeout=20, what="socket"):
    """A stream socket connected to the UNIX socket at path, retried while
    the server is still starting; TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError as e:
            sock.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} {path} never appeared: {e}") from None
            time.sleep(0.05)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_listening(port, pid="self"):
    """Whether a TCP socket listens on port in the network namespace of
    process pid (read from /proc, so that no connection is made: a
    migration destination accepts only one)."""
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                return True
    return False
