"""Whether a process is the one listening on a port (Linux, from /proc).

A server started on a port chosen free may find it taken by then; a check that the port answers
would then hear the other server (one of a parallel test job), and the caller would talk to a
server that stops under it. Readiness asks, too, that the listening socket is the process's own.
"""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (IPv4 or IPv6)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or not ours to read
        return False
    owned = set()
    for fd in fds:
        try:
            owned.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own, for one)
            continue
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port and f"socket:[{inode}]" in owned:
                return True
    return False
