"""What the bench starts and stops: its PostgreSQL databases, Redis, the SMTP sink, the
HTTP sink, gunicorn and the Celery workers. Every process started here is tracked and
stopped by its own pid at exit."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("BENCH_VAR") or ROOT / "var" / "bench")
LOGS = VAR / "logs"
PY = sys.executable

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6379"))
# Two Redis databases: counters/caches, then the Celery broker.
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))

_procs: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[:3]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def spawn(
    args: list[str], *, name: str, env: dict[str, str] | None = None, stdout=None, stdin=None
) -> subprocess.Popen:
    LOGS.mkdir(parents=True, exist_ok=True)
    out = stdout if stdout is not None else open(LOGS / f"{name}.log", "ab")
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if stdout is None else open(LOGS / f"{name}.err", "ab"),
        stdin=stdin,
        start_new_session=True,
    )
    _procs.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop one process we started, and its children (its own session/group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
    if proc in _procs:
        _procs.remove(proc)


@atexit.register
def stop_all() -> None:
    for proc in reversed(list(_procs)):
        stop(proc)


# --- PostgreSQL and Redis --------------------------------------------------------------


def ensure_services() -> None:
    """Start the machine's PostgreSQL cluster and a Redis server when they are down."""
    if subprocess.run(["pg_isready", "-h", PG_HOST, "-p", PG_PORT, "-q"]).returncode != 0:
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if not versions:
            raise RuntimeError("PostgreSQL is not running and no cluster was found")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=True,
        )
    if not redis_ping():
        log("starting redis-server")
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                REDIS_HOST,
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
    for _ in range(60):
        if (
            subprocess.run(["pg_isready", "-h", PG_HOST, "-p", PG_PORT, "-q"]).returncode == 0
            and redis_ping()
        ):
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL or Redis did not come up")


def redis_ping() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def psql(sql: str, db: str = "postgres") -> str:
    for attempt in range(3):
        out = subprocess.run(
            [
                "psql",
                "-h",
                PG_HOST,
                "-p",
                PG_PORT,
                "-U",
                PG_USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode == 0:
            return out.stdout
        log(f"psql failed ({out.stderr.strip()[:300]}); retrying")
        time.sleep(1 + attempt)
    raise RuntimeError(f"psql {sql[:80]!r} on {db}: {out.stderr.strip()[:500]}")


def recreate_db(name: str) -> None:
    if not name.startswith("msgcenter_bench"):
        raise ValueError("the bench only touches databases named msgcenter_bench*")
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')


def db_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def base_env(db: str) -> dict[str, str]:
    """The environment every msgcenter process of the bench shares."""
    env = dict(os.environ)
    for key in ("DJANGO_SETTINGS_MODULE", "TEST_DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(key, None)
    env.update(
        {
            "DATABASE_URL": db_url(db),
            "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "CELERY_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB + 1}",
            "SECRET_KEY": "msgcenter-bench-only-secret-key-0123456789abcdefghijklmnop",
            "MSGCENTER_VAR_DIR": str(VAR / "msgcenter"),
            "MSGCENTER_MAX_RECIPIENTS": "100000",
            "DB_CONN_MAX_AGE": "600",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "msgcenter.settings",
        }
    )
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )


# --- sinks -----------------------------------------------------------------------------


class SMTPSink:
    """Postfix's smtp-sink (C, event driven) when installed, else an aiosmtpd sink.
    Counts accepted messages."""

    def __init__(self) -> None:
        self.port = free_port()
        self.kind = ""
        self._count = 0
        self._lock = threading.Lock()
        binary = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
        )
        if binary:
            self.kind = "smtp-sink (postfix)"
            self.proc = spawn(
                [binary, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "1024"],
                name="smtp-sink",
                stdout=subprocess.PIPE,
            )
            threading.Thread(target=self._read_counter, daemon=True).start()
        else:
            self.kind = "aiosmtpd (smtp-sink unavailable)"
            self.proc = spawn(
                [PY, "-m", "bench.aiosmtpd_sink", str(self.port)],
                name="smtp-sink",
                stdout=subprocess.PIPE,
            )
            threading.Thread(target=self._read_lines, daemon=True).start()
        wait_port(self.port, proc=self.proc)

    def _read_counter(self) -> None:
        buf = b""
        pattern = re.compile(rb"mesg=(\d+)")
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            buf = (buf + chunk)[-256:]
            found = pattern.findall(buf)
            if found:
                with self._lock:
                    self._count = int(found[-1])

    def _read_lines(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(b"mesg="):
                with self._lock:
                    self._count = int(line[5:])

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def wait_for(self, n: int, timeout: float) -> float:
        """Block until the counter reaches n; return the moment (perf_counter) it did."""
        deadline = time.monotonic() + timeout
        while self.count < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMTP sink has {self.count} of {n} messages")
            time.sleep(0.01)
        return time.perf_counter()


class HTTPSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = spawn(
            [PY, "-m", "bench.http_sink", str(self.port)], name="http-sink", stdin=subprocess.PIPE
        )
        wait_port(self.port, proc=self.proc)
        import httpx

        self.client = httpx.Client(base_url=self.url)

    @property
    def count(self) -> int:
        return int(self.client.get("/__count").text)

    def reset(self) -> None:
        self.client.post("/__reset")


# --- gunicorn and workers ---------------------------------------------------------------


class Gunicorn:
    def __init__(
        self, env: dict[str, str], *, settings: str = "msgcenter.settings", name: str = "gunicorn"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "DJANGO_SETTINGS_MODULE": settings, "BENCH_BIND": f"127.0.0.1:{self.port}"}
        self.proc = spawn(
            [PY, "-m", "gunicorn", "-c", "bench/gunicorn.conf.py", "msgcenter.wsgi:application"],
            name=name,
            env=env,
        )
        wait_port(self.port, timeout=60, proc=self.proc)

    def stop(self) -> None:
        stop(self.proc)


class Workers:
    """N Celery worker processes (concurrency 1 each) on every queue."""

    def __init__(self, env: dict[str, str], n: int) -> None:
        self.env = env
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        from msgcenter.celery import ALL_QUEUES, app

        for i in range(self.n):
            self.procs.append(
                spawn(
                    [
                        PY,
                        "-m",
                        "celery",
                        "-A",
                        "msgcenter",
                        "worker",
                        "-n",
                        f"bench{i}@%h",
                        "-Q",
                        ",".join(ALL_QUEUES),
                        "-c",
                        "1",
                        "-l",
                        "warning",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    name=f"worker{i}",
                    env=self.env,
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited; see {LOGS}")
            replies = app.control.ping(timeout=0.5) or []
            if len(replies) >= self.n:
                return
        raise RuntimeError("workers did not answer ping")

    def stop(self) -> None:
        for p in self.procs:
            stop(p)
        self.procs = []
