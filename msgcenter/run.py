"""The quick start: `python -m msgcenter.run [--setup]`.

Starts web (gunicorn), a Celery worker on every queue and Celery beat as child processes,
prefixes their output, forwards SIGINT/SIGTERM to them and stops them all when one dies.
With `--setup` it first migrates, creates the cache table, compiles translations and
seeds the demo (the sequence `make run` uses). Environment: see docs/configuration.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0


def setup() -> None:
    """Bring the database up to date and seed the demo. Safe to run on every start."""
    from django.core.management import CommandError, call_command
    from django.db import connections

    call_command("migrate", interactive=False, verbosity=1)
    call_command("createcachetable")
    if (BASE_DIR / "locale").is_dir():
        try:
            call_command("compilemessages", verbosity=0, ignore_patterns=[".venv", "var"])
        except CommandError as exc:  # gettext missing: the English UI still works
            print(f"Translations not compiled: {exc}", flush=True)
    call_command("seed_demo")
    connections.close_all()


def commands(*, host: str, port: int) -> dict[str, list[str]]:
    """The command line of each child process."""
    from django.conf import settings

    from msgcenter.celery import ALL_QUEUES

    # whitenoise serves from the apps (finders) but warns when STATIC_ROOT is missing.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    py = sys.executable
    worker = [
        py,
        "-m",
        "celery",
        "-A",
        "msgcenter",
        "worker",
        "-l",
        "info",
        "-Q",
        ",".join(ALL_QUEUES),
        "-n",
        "quickstart@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    concurrency = os.environ.get("WORKER_CONCURRENCY", "4")
    if settings.CELERY_BROKER_URL.startswith("filesystem://") or not settings.IS_POSTGRES:
        # Threads in one process: prefork works here too, but one process keeps SQLite's
        # writers and the polling of the broker directory down to one.
        worker += ["--pool", "threads", "-c", concurrency]
    else:
        worker += ["-c", concurrency]
    return {
        "web": [
            py,
            "-m",
            "gunicorn",
            "msgcenter.wsgi",
            "--bind",
            f"{host}:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "1"),
            "--threads",
            os.environ.get("WEB_THREADS", "4"),
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
            "--no-control-socket",
        ],
        "worker": worker,
        "beat": [
            py,
            "-m",
            "celery",
            "-A",
            "msgcenter",
            "beat",
            "-l",
            "info",
            "--scheduler",
            settings.CELERY_BEAT_SCHEDULER,
        ],
    }


def _set_parent_death_signal() -> None:
    """Linux: a child gets SIGTERM if the supervisor dies without cleaning up."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    def __init__(self, cmds: dict[str, list[str]]) -> None:
        self.cmds = cmds
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.requested = ""  # set by the signal handler, acted on by wait()
        self.width = max(len(name) for name in cmds)
        self.lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self.lock:
            sys.stdout.write(f"{name.ljust(self.width)} | {line}\n")
            sys.stdout.flush()

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "msgcenter.settings"
            ),
        }
        for name, cmd in self.cmds.items():
            # Own process group: a terminal's Ctrl-C reaches only us, and we stop each
            # child (with its pool or gunicorn workers) exactly once.
            self.procs[name] = subprocess.Popen(
                cmd,
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        for name, proc in self.procs.items():
            self.say("run", f"{name} started (pid {proc.pid})")
            threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b""):
            self.say(name, raw.decode("utf-8", "replace").rstrip("\n"))

    def stop(self, reason: str) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.say("run", f"stopping ({reason})")
        for proc in self.procs.values():
            self._signal(proc, signal.SIGTERM)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """Block until every child has exited; returns the exit code for the supervisor."""
        failed = ""
        while not self.stopping.is_set():
            if self.requested:
                self.stop(self.requested)
                break
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    failed = f"{name} exited with code {proc.returncode}"
                    self.stop(failed)
                    break
            time.sleep(0.2)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("run", f"{name} did not stop in time; killing it")
                self._signal(proc, signal.SIGKILL)
                proc.wait()
            # Reap what is left of its group (gunicorn workers, pool processes).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.say("run", "all processes stopped")
        return 1 if failed else 0


def announce_when_up(sup: Supervisor, *, host: str, port: int, timeout: float = 60) -> None:
    """Print where to go and how to log in once the admin answers."""
    url = f"http://{host}:{port}/admin/login/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not sup.stopping.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    with sup.lock:
                        print(banner(host=host, port=port), flush=True)
                    return
        except OSError:
            pass
        time.sleep(0.2)


def banner(*, host: str, port: int) -> str:
    from django.conf import settings

    from tasks_app.management.commands.seed_demo import read_credentials

    creds = read_credentials()
    base = f"http://{host}:{port}"
    rows = [
        ("Admin", f"{base}/admin/"),
        (
            "Login",
            f"{creds.get('DEMO_ADMIN_USER', 'admin')} / "
            f"{creds.get('DEMO_ADMIN_PASSWORD', '(see manage.py seed_demo)')}",
        ),
        ("API key", creds.get("DEMO_API_KEY", "(run manage.py seed_demo)")),
        ("API docs", f"{base}/api/docs/"),
        ("Database", settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]),
        ("Broker", settings.CELERY_BROKER_URL.split("://", 1)[0]),
    ]
    lines = ["", "msgcenter is running. Press Ctrl-C to stop.", ""]
    lines += [f"  {label + ':':<10} {value}" for label, value in rows]
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m msgcenter.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="migrate, create the cache table and seed the demo first",
    )
    parser.add_argument("--setup-only", action="store_true", help="only do the setup")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(BASE_DIR))
    os.chdir(BASE_DIR)  # compilemessages and the children work from the project root
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msgcenter.settings")
    # Children build absolute links from PORT (settings.PUBLIC_BASE_URL).
    os.environ["PORT"] = str(args.port)
    import django

    django.setup()
    if args.setup or args.setup_only:
        setup()
        if args.setup_only:
            return 0

    sup = Supervisor(commands(host=args.host, port=args.port))

    def on_signal(signum: int, frame: object) -> None:
        sup.requested = signal.Signals(signum).name

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    sup.start()
    threading.Thread(
        target=announce_when_up,
        args=(sup,),
        kwargs={"host": args.host, "port": args.port},
        daemon=True,
    ).start()
    return sup.wait()


if __name__ == "__main__":
    sys.exit(main())
