"""The scenarios. Each returns a dict with its runs, medians and ratio against a peer or a
ceiling measured in the same run, on the same machine, against the same sinks."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from . import infra
from .infra import log

SECRET = "bench-webhook-secret"


@dataclass
class Sizes:
    email: int = 5_000
    inapp: int = 10_000
    fanout: int = 100_000
    webhook: int = 10_000
    api_seconds: int = 10
    api_connections: int = 32
    admin_small: int = 10_000
    admin_large: int = 1_000_000
    admin_requests: int = 5


QUICK = Sizes(
    email=300,
    inapp=1_000,
    fanout=5_000,
    webhook=500,
    api_seconds=2,
    admin_small=1_000,
    admin_large=10_000,
    admin_requests=3,
)


@dataclass
class Ctx:
    sizes: Sizes
    runs: int
    workers_n: int
    env: dict[str, str]
    db: str
    api_key: str = ""
    smtp: Any = None
    http: Any = None
    gunicorn: Any = None
    workers: Any = None
    notes: list[str] = field(default_factory=list)


def summary(seconds: list[float], n: int) -> dict[str, Any]:
    med = statistics.median(seconds)
    return {
        "runs_s": [round(s, 4) for s in seconds],
        "median_s": round(med, 4),
        "per_s": round(n / med, 1),
    }


# --- fixtures in the bench database ----------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_no"],
    "properties": {"order_no": {"type": "string"}},
}


def setup_data(ctx: Ctx, recipients: int) -> None:
    """API key, one template per channel, recipients r1..rN, the SMTP and webhook accounts."""
    from channels_app.models import ChannelAccount
    from tasks_app.models import Recipient
    from tasks_app.services import create_api_key
    from templates_app.services import create_template, publish_template

    ctx.api_key = create_api_key(client_name="bench", scopes=["send", "manage"])[1]
    for channel in ("email", "inapp", "webhook"):
        content = {
            "channel": channel,
            "subject": "Order {{ order_no }} shipped",
            "body": "Hi {{ recipient.name }}, your order {{ order_no }} is on its way.",
        }
        if channel == "email":
            content["body_html"] = "<p>Your order <b>{{ order_no }}</b> is on its way.</p>"
        template = create_template(
            code=f"bench_{channel}",
            name=f"Bench {channel}",
            category="notification",
            params_schema=ORDER_SCHEMA,
            contents=[content],
        )
        publish_template(template=template, by="bench")
    Recipient.objects.bulk_create(
        [
            Recipient(external_id=f"r{i}", name=f"User {i}", email=f"user{i}@bench.test")
            for i in range(1, recipients + 1)
        ],
        batch_size=5000,
    )
    ChannelAccount.objects.create(
        channel="email",
        provider="smtp",
        name="bench sink",
        config={"host": "127.0.0.1", "port": ctx.smtp.port, "from_email": "noreply@msgcenter.test"},
    )
    ChannelAccount.objects.create(
        channel="webhook",
        provider="webhook",
        name="bench sink",
        config={"url": ctx.http.url + "/hook", "secret": SECRET, "timeout": 10},
    )
    infra.psql("VACUUM ANALYZE", ctx.db)


def reset_tables(ctx: Ctx) -> None:
    """Every run starts from empty task/delivery tables, so that runs are alike."""
    from channels_app.models import DeliveryRecord, Interaction
    from tasks_app.models import MessageTask, TaskEvent

    tables = ", ".join(
        m._meta.db_table for m in (Interaction, DeliveryRecord, TaskEvent, MessageTask)
    )
    infra.psql(f"TRUNCATE {tables} CASCADE", ctx.db)
    # Dedup stamps and daily caps would hold back a repeat to the same recipients.
    import redis

    redis.Redis(host=infra.REDIS_HOST, port=infra.REDIS_PORT, db=infra.REDIS_DB).flushdb()


def post_message(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        f"{ctx.gunicorn.url}/api/v1/messages",
        json=body,
        timeout=600,
        headers={"Authorization": f"Bearer {ctx.api_key}"},
    )
    if r.status_code != 202:
        raise RuntimeError(f"POST /api/v1/messages -> {r.status_code}: {r.text[:500]}")
    return r.json()


def wait_task_done(task_id: str, timeout: float) -> float:
    from tasks_app.models import TERMINAL_TASK_STATES, MessageTask

    deadline = time.monotonic() + timeout
    while True:
        state = MessageTask.objects.filter(pk=task_id).values_list("state", flat=True).first()
        if state in TERMINAL_TASK_STATES:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} still {state} after {timeout}s")
        time.sleep(0.1)


def delivery_states(**filters: Any) -> dict[str, int]:
    from django.db.models import Count

    from channels_app.models import DeliveryRecord

    return {
        row["state"]: row["n"]
        for row in DeliveryRecord.objects.filter(**filters)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
    }


# --- 1. email end to end ----------------------------------------------------------------


def msgcenter_email_run(ctx: Ctx, n: int, run: int) -> tuple[float, dict[str, Any]]:
    reset_tables(ctx)
    base = ctx.smtp.count
    started = time.perf_counter()
    task = post_message(
        ctx,
        {
            "template": "bench_email",
            "channels": ["email"],
            "recipients": [f"r{i}" for i in range(1, n + 1)],
            "params": {"order_no": f"A{run}"},
        },
    )
    accepted = time.perf_counter()
    done = ctx.smtp.wait_for(base + n, timeout=600)
    wait_task_done(task["id"], timeout=120)
    states = delivery_states(task_id=task["id"])
    if states.get("sent") != n:
        raise RuntimeError(f"email run: expected {n} sent, got {states}")
    return done - started, {"request_s": round(accepted - started, 3)}


def smtp_ceiling_run(ctx: Ctx, n: int) -> float:
    """Pre-built message bytes over one smtplib connection."""
    import smtplib
    from email.message import EmailMessage

    messages = []
    for i in range(1, n + 1):
        m = EmailMessage()
        m["Subject"] = "Order A1 shipped"
        m["From"] = "noreply@msgcenter.test"
        m["To"] = f"user{i}@bench.test"
        m.set_content(f"Hi User {i}, your order A1 is on its way.")
        m.add_alternative("<p>Your order <b>A1</b> is on its way.</p>", subtype="html")
        messages.append((f"user{i}@bench.test", m.as_bytes()))
    base = ctx.smtp.count
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", ctx.smtp.port) as smtp:
        for to, raw in messages:
            smtp.sendmail("noreply@msgcenter.test", [to], raw)
    done = ctx.smtp.wait_for(base + n, timeout=120)
    return done - started


class PostOffice:
    """django-post-office in its own venv, driven run by run over a pipe."""

    def __init__(self, ctx: Ctx, n: int) -> None:
        python = infra.VAR / "po-venv" / "bin" / "python"
        if not python.exists():
            raise RuntimeError("django-post-office venv missing: run bench/setup.sh")
        infra.recreate_db(f"{ctx.db}_po")
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL")
        }
        env.update({"BENCH_PO_DB": f"{ctx.db}_po", "BENCH_SMTP_PORT": str(ctx.smtp.port)})
        self.proc = infra.spawn(
            [
                str(python),
                "bench/postoffice/run.py",
                "--n",
                str(n),
                "--runs",
                str(ctx.runs),
                "--processes",
                str(ctx.workers_n),
                "--lockfile",
                str(infra.VAR / "post-office"),
            ],
            name="post-office",
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ctx = ctx
        self.n = n
        self._read()  # ready

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"post-office runner exited; see {infra.LOGS}/post-office.err")
        return json.loads(line)

    def run(self) -> float:
        base = self.ctx.smtp.count
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        result = self._read()
        self.ctx.smtp.wait_for(base + self.n, timeout=60)
        if result["sent"] != self.n:
            raise RuntimeError(f"post-office sent {result['sent']} of {self.n}")
        return result["seconds"]

    def close(self) -> None:
        infra.stop(self.proc)


def scenario_email(ctx: Ctx) -> dict[str, Any]:
    n = ctx.sizes.email
    po = PostOffice(ctx, n)
    ours, theirs, ceiling, extra = [], [], [], []
    try:
        for run in range(ctx.runs):
            seconds, info = msgcenter_email_run(ctx, n, run)
            ours.append(seconds)
            extra.append(info["request_s"])
            theirs.append(po.run())
            ceiling.append(smtp_ceiling_run(ctx, n))
            log(
                f"email run {run}: msgcenter {ours[-1]:.2f}s, post-office {theirs[-1]:.2f}s, "
                f"smtplib {ceiling[-1]:.2f}s"
            )
    finally:
        po.close()
    res = {
        "n": n,
        "sink": ctx.smtp.kind,
        "msgcenter": summary(ours, n),
        "post_office": summary(theirs, n),
        "ceiling": summary(ceiling, n),
        "request_median_s": round(statistics.median(extra), 3),
    }
    res["ratio_vs_peer"] = round(res["post_office"]["median_s"] / res["msgcenter"]["median_s"], 2)
    res["ratio_vs_ceiling"] = round(res["ceiling"]["median_s"] / res["msgcenter"]["median_s"], 3)
    res["target"] = ">= 3x django-post-office"
    res["met"] = res["ratio_vs_peer"] >= 3
    return res


# --- 2. in-app: 10,000 in one request (issue 3) and the 100,000 fan-out ----------------


def msgcenter_inapp_run(ctx: Ctx, n: int, run: int) -> tuple[float, float]:
    reset_tables(ctx)
    started = time.perf_counter()
    task = post_message(
        ctx,
        {
            "template": "bench_inapp",
            "channels": ["inapp"],
            "recipients": [f"r{i}" for i in range(1, n + 1)],
            "params": {"order_no": f"A{run}"},
        },
    )
    accepted = time.perf_counter()
    done = wait_task_done(task["id"], timeout=900)
    states = delivery_states(task_id=task["id"])
    if states.get("delivered") != n:
        raise RuntimeError(f"inapp run: expected {n} delivered, got {states}")
    return done - started, accepted - started


def copy_ceiling_run(ctx: Ctx, n: int) -> float:
    """PostgreSQL COPY of n delivery rows (already rendered, state delivered) into the
    same table with the same indexes, committed."""
    from django.db import connection
    from django.utils import timezone

    from channels_app.models import DeliveryRecord
    from tasks_app.models import MessageTask, Recipient
    from templates_app.models import TemplateVersion

    version = TemplateVersion.objects.get(template__code="bench_inapp")
    task = MessageTask(
        template_id=version.template_id,
        template_version=version,
        channels=["inapp"],
        params={"order_no": "C1"},
    )
    task.save()
    ids = list(Recipient.objects.order_by("id").values_list("id", flat=True)[:n])
    now = timezone.now().isoformat()
    rows = []
    for i, rid in enumerate(ids, start=1):
        content = json.dumps(
            {
                "template": "bench_inapp",
                "category": "notification",
                "extra": {},
                "subject": "Order C1 shipped",
                "body": f"Hi User {i}, your order C1 is on its way.",
                "body_html": "",
            }
        )
        rows.append(
            (
                str(task.pk),
                rid,
                "inapp",
                "primary",
                "inapp",
                f"r{i}",
                "[]",
                content,
                "delivered",
                "",
                1,
                "",
                "[]",
                "",
                now,
                now,
                now,
                now,
            )
        )
    cols = (
        "task_id",
        "recipient_id",
        "channel",
        "kind",
        "provider",
        "address",
        "mentions",
        "content",
        "state",
        "reason",
        "attempts",
        "error",
        "attempt_log",
        "provider_message_id",
        "created_at",
        "queued_at",
        "sent_at",
        "delivered_at",
    )
    table = DeliveryRecord._meta.db_table
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    seconds = time.perf_counter() - started
    return seconds


def scenario_inapp(ctx: Ctx, n: int, with_ceiling: bool) -> dict[str, Any]:
    ours, requests, ceiling = [], [], []
    for run in range(ctx.runs):
        seconds, request_s = msgcenter_inapp_run(ctx, n, run)
        ours.append(seconds)
        requests.append(request_s)
        line = f"inapp {n} run {run}: {seconds:.2f}s (request {request_s:.2f}s)"
        if with_ceiling:
            reset_tables(ctx)
            ceiling.append(copy_ceiling_run(ctx, n))
            line += f", COPY {ceiling[-1]:.2f}s"
        log(line)
    res = {
        "n": n,
        "msgcenter": summary(ours, n),
        "request_median_s": round(statistics.median(requests), 3),
    }
    if with_ceiling:
        res["ceiling"] = summary(ceiling, n)
        res["ratio_vs_ceiling"] = round(
            res["ceiling"]["median_s"] / res["msgcenter"]["median_s"], 3
        )
        res["target"] = ">= 30,000 deliveries/s and >= 10% of the COPY ceiling"
        res["met"] = res["msgcenter"]["per_s"] >= 30_000 and res["ratio_vs_ceiling"] >= 0.10
    return res


# --- 4. webhook -------------------------------------------------------------------------


def make_webhook_tasks(n: int, run: int) -> list[int]:
    """n one-delivery webhook tasks, already planned (`pushing`, delivery `queued` with its
    content rendered), built in bulk: the scenario times sending, not task creation."""
    from django.utils import timezone

    from channels_app.models import DeliveryRecord, DeliveryState
    from tasks_app.models import MessageTask, TaskState
    from tasks_app.pipeline import render_delivery
    from templates_app.models import TemplateVersion

    version = TemplateVersion.objects.select_related("template").get(template__code="bench_webhook")
    now = timezone.now()
    tasks, deliveries = [], []
    for i in range(1, n + 1):
        task = MessageTask(
            template=version.template,
            template_version=version,
            channels=["webhook"],
            params={"order_no": f"W{run}-{i}"},
            state=TaskState.PUSHING,
            recipient_count=1,
            delivery_count=1,
            created_by="bench",
            created_at=now,
        )
        mention = {"external_id": f"r{i}", "name": f"User {i}", "phone": "", "address": ""}
        d = DeliveryRecord(
            task=task,
            recipient=None,
            channel="webhook",
            mentions=[mention],
            state=DeliveryState.QUEUED,
            queued_at=now,
            lease_until=now + timedelta(seconds=600),
            created_at=now,
        )
        d.content = render_delivery(task, d)
        tasks.append(task)
        deliveries.append(d)
    MessageTask.objects.bulk_create(tasks, batch_size=2000)
    DeliveryRecord.objects.bulk_create(deliveries, batch_size=2000)
    return [d.pk for d in deliveries]


def wait_no_pushing(timeout: float) -> float:
    from tasks_app.models import MessageTask, TaskState

    deadline = time.monotonic() + timeout
    while MessageTask.objects.filter(state=TaskState.PUSHING).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("webhook tasks still pushing")
        time.sleep(0.1)
    return time.perf_counter()


def httpx_ceiling_run(ctx: Ctx, n: int) -> float:
    bodies = [
        json.dumps(
            {
                "delivery": str(i),
                "task": "t",
                "template": "bench_webhook",
                "subject": "Order W shipped",
                "body": f"Hi, your order W{i} is on its way.",
                "recipients": [f"r{i}"],
            },
            separators=(",", ":"),
        ).encode()
        for i in range(n)
    ]
    ctx.http.reset()
    url = ctx.http.url + "/hook"
    started = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for body in bodies:
            ts = str(int(time.time()))
            sig = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            client.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Msgcenter-Timestamp": ts,
                    "X-Msgcenter-Signature": f"sha256={sig}",
                },
            ).raise_for_status()
    seconds = time.perf_counter() - started
    if ctx.http.count != n:
        raise RuntimeError(f"httpx ceiling: sink counted {ctx.http.count} of {n}")
    return seconds


def scenario_webhook(ctx: Ctx) -> dict[str, Any]:
    from channels_app.models import DeliveryRecord
    from channels_app.sending import enqueue_ids

    n = ctx.sizes.webhook
    ours, ceiling = [], []
    for run in range(ctx.runs):
        reset_tables(ctx)
        ids = make_webhook_tasks(n, run)
        infra.psql("ANALYZE", ctx.db)
        ctx.http.reset()
        started = time.perf_counter()
        enqueue_ids("webhook", ids)
        done = wait_no_pushing(timeout=600)
        ours.append(done - started)
        sent = DeliveryRecord.objects.filter(state="sent", channel="webhook").count()
        if sent != n or ctx.http.count != n:
            raise RuntimeError(f"webhook run: {sent} sent, sink saw {ctx.http.count}, want {n}")
        ceiling.append(httpx_ceiling_run(ctx, n))
        log(f"webhook run {run}: msgcenter {ours[-1]:.2f}s, httpx {ceiling[-1]:.2f}s")
    res = {"n": n, "msgcenter": summary(ours, n), "ceiling": summary(ceiling, n)}
    res["ratio_vs_ceiling"] = round(res["ceiling"]["median_s"] / res["msgcenter"]["median_s"], 3)
    res["target"] = ">= 50% of a raw pooled httpx loop"
    res["met"] = res["ratio_vs_ceiling"] >= 0.5
    return res


# --- 3. API -----------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def _parse_latency(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_run(url: str, key: str, seconds: int, connections: int) -> dict[str, Any]:
    body = json.dumps(
        {
            "template": "bench_inapp",
            "channels": ["inapp"],
            "recipients": ["r1"],
            "params": {"order_no": "A1"},
        }
    )
    script = infra.VAR / "wrk_post.lua"
    script.write_text(WRK_SCRIPT.format(body=body, key=key))
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url + "/api/v1/messages",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _parse_latency(lat["50"]),
        "p99_ms": _parse_latency(lat["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def python_load_run(url: str, key: str, seconds: int, connections: int) -> dict[str, Any]:
    """Fallback load generator when wrk is missing: `connections` threads, each with its
    own keep-alive httpx client, for `seconds`."""
    import threading

    body = {
        "template": "bench_inapp",
        "channels": ["inapp"],
        "recipients": ["r1"],
        "params": {"order_no": "A1"},
    }
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
            while time.monotonic() < stop_at:
                t = time.perf_counter()
                r = client.post(url + "/api/v1/messages", json=body)
                with lock:
                    latencies.append((time.perf_counter() - t) * 1000)
                    errors[0] += r.status_code >= 300

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "non_2xx": errors[0],
    }


def scenario_api(ctx: Ctx) -> dict[str, Any]:
    """Workers are stopped meanwhile: this measures the web tier alone (each request still
    creates the task and its delivery and enqueues the planning job on the broker)."""
    from msgcenter.celery import app

    load = wrk_run if shutil.which("wrk") else python_load_run
    seconds, conns = ctx.sizes.api_seconds, ctx.sizes.api_connections
    baseline = infra.Gunicorn(ctx.env, settings="bench.baseline.settings", name="gunicorn-bare")
    ours, theirs = [], []
    try:
        load(ctx.gunicorn.url, ctx.api_key, 1, conns)  # warm-up
        load(baseline.url, ctx.api_key, 1, conns)
        for run in range(ctx.runs):
            reset_tables(ctx)
            ours.append(load(ctx.gunicorn.url, ctx.api_key, seconds, conns))
            theirs.append(load(baseline.url, ctx.api_key, seconds, conns))
            log(f"api run {run}: msgcenter {ours[-1]}, bare DRF {theirs[-1]}")
    finally:
        baseline.stop()
        app.control.purge()
        reset_tables(ctx)

    def med(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            k: round(statistics.median(r[k] for r in rows), 2)
            for k in ("rps", "p50_ms", "p99_ms", "non_2xx")
        }

    res = {
        "connections": conns,
        "seconds": seconds,
        "load_generator": "wrk" if load is wrk_run else "python threads",
        "msgcenter": med(ours),
        "bare_drf": med(theirs),
        "runs": {"msgcenter": ours, "bare_drf": theirs},
    }
    res["ratio_vs_peer"] = round(res["msgcenter"]["rps"] / res["bare_drf"]["rps"], 3)
    res["target"] = ">= 50% of bare DRF requests/s; p99 < 50 ms"
    res["met"] = res["ratio_vs_peer"] >= 0.5 and res["msgcenter"]["p99_ms"] < 50
    return res


# --- 5. admin at scale (a subprocess on its own database) -----------------------------


def scenario_admin(ctx: Ctx) -> dict[str, Any]:
    db = f"{ctx.db}_admin"
    infra.recreate_db(db)
    env = infra.base_env(db)
    infra.migrate(env)
    out = subprocess.run(
        [
            infra.PY,
            "-m",
            "bench.admin_scale",
            "--small",
            str(ctx.sizes.admin_small),
            "--large",
            str(ctx.sizes.admin_large),
            "--requests",
            str(max(ctx.sizes.admin_requests, ctx.runs)),
        ],
        cwd=infra.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"admin scenario failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    ratios = {
        page: round(v["large"]["median_ms"] / v["small"]["median_ms"], 2)
        for page, v in res["pages"].items()
    }
    res["ratio_large_vs_small"] = ratios
    res["target"] = "1M-row page <= 2x the 10k-row page time"
    res["met"] = all(r <= 2 for r in ratios.values())
    return res


# --- issue 3: SQL queries per 1,000 deliveries (in-process, eager Celery) --------------


def scenario_queries(ctx: Ctx) -> dict[str, Any]:
    reset_tables(ctx)
    env = {**ctx.env, "CELERY_TASK_ALWAYS_EAGER": "1"}
    out = subprocess.run(
        [
            infra.PY,
            "-m",
            "bench.querycount",
            "--inapp",
            str(ctx.sizes.inapp),
            "--email",
            str(ctx.sizes.email),
            "--key",
            ctx.api_key,
        ],
        cwd=infra.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    reset_tables(ctx)
    if out.returncode != 0:
        raise RuntimeError(f"query count failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
