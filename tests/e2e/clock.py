"""Run Celery (e.g. beat) with its wall clock shifted by the seconds written in a file.

    python -m tests.e2e.clock <shift file> -m celery -A msgcenter beat ...

The file is re-read every 50 ms and the clock moves by the change, so a test can bring
a crontab's next minute within seconds instead of waiting for it. Only this process's
clock moves (time-machine); workers keep the real one."""

from __future__ import annotations

import runpy
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine


def _read(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def main() -> None:
    path = Path(sys.argv[1])
    if sys.argv[2] != "-m":
        raise SystemExit("usage: python -m tests.e2e.clock <shift file> -m <module> [args]")
    module, args = sys.argv[3], sys.argv[4:]
    applied = _read(path)
    coordinates = time_machine.travel(
        datetime.now(UTC) + timedelta(seconds=applied), tick=True
    ).start()

    def follow() -> None:
        nonlocal applied
        while True:
            time.sleep(0.05)
            wanted = _read(path)
            if wanted != applied:
                coordinates.shift(timedelta(seconds=wanted - applied))
                applied = wanted

    threading.Thread(target=follow, daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
