"""Run a command with the system clock moved to another instant (libfaketime, from PyPI's
``libfaketime`` package, preloaded into the command and every process it starts). The clock
then runs at real speed from there. tests/run.sh runs the suite this way at several hours and
dates: a test or a code path that reads the wall clock instead of the host's clock fails.

    python tests/clock_shift.py "2028-12-07 03:30:00" -- python -m pytest -m "not kannel" ...
"""

from __future__ import annotations

import datetime as dt
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    when = dt.datetime.fromisoformat(argv[0]).replace(tzinfo=dt.UTC)
    import libfaketime

    _, env = libfaketime.get_reload_information()
    # An offset, not a start time ("@..."): with a start time every process started later would
    # begin at that instant again, and a worker started a minute after the test would live a
    # minute in the past. FAKETIME_NO_CACHE (the package's default, for changing the time while
    # running) costs a file read per clock call; the offset never changes, so the cache stays on.
    offset = round((when - dt.datetime.now(dt.UTC)).total_seconds())
    env = {**os.environ, **env, "FAKETIME": f"{offset:+d}s", "FAKETIME_NO_CACHE": "0"}
    print(f"clock_shift: the clock reads {when:%Y-%m-%d %H:%M} UTC for: {' '.join(argv[2:])}", file=sys.stderr, flush=True)
    os.execvpe(argv[2], argv[2:], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
