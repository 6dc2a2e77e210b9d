"""Scheduling end to end with real processes: Celery beat (DatabaseScheduler) and two
workers on Redis, a real SMTP server.

- `send_at` 5 s ahead: delivered after it, not before (the release_due tick).
- A RecurringSend every minute: one task per run, even with two beats firing each run
  (beat's clock is moved forward so that two minutes pass in seconds).
- A worker SIGKILLed mid-chunk: sweep_stuck puts the chunk back and the mails arrive
  exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from channels_app.models import DeliveryRecord
from tasks_app import recurring, scheduler
from tasks_app.models import MessageTask
from tests import factories
from tests.conftest import LOG_DIR, ROOT
from tests.servers import SMTPServer, _SMTPHandler, wait_for

pytestmark = [pytest.mark.e2e]


class Beat:
    """`celery -A msgcenter beat` processes, optionally with a shifted clock."""

    def __init__(self, workers, tmp_path: Path) -> None:
        self.env = {**workers.env(), "MSGCENTER_RELEASE_DUE_SECONDS": "1"}
        self.shift_file = tmp_path / "clock-shift"
        self.shift_file.write_text("0")
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, shifted: bool = False) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"beat-{name}.log", "ab")
        runner = (
            [sys.executable, "-m", "tests.e2e.clock", str(self.shift_file)]
            if shifted
            else [sys.executable]
        )
        self.procs.append(
            subprocess.Popen(
                [
                    *runner,
                    "-m",
                    "celery",
                    "-A",
                    "msgcenter",
                    "beat",
                    "-l",
                    "info",
                    "--max-interval",
                    "1",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def shift(self, seconds: float) -> None:
        self.shift_file.write_text(repr(seconds))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


@pytest.fixture
def beat(workers, tmp_path):
    b = Beat(workers, tmp_path)
    yield b
    b.stop()


def wait_task(task_id, timeout: float = 30) -> MessageTask:
    wait_for(
        lambda: MessageTask.objects.get(pk=task_id).state in ("completed", "failed"),
        timeout=timeout,
        message=f"task {task_id} to finish",
    )
    return MessageTask.objects.get(pk=task_id)


def test_send_at_five_seconds_ahead_is_delivered_after_it_and_not_before(
    workers, beat, api, smtp_server
):
    factories.published_template(channels=("inapp", "email"))
    factories.recipients(2)
    factories.smtp_account(smtp_server)
    beat.start("send-at")
    send_at = datetime.now(UTC) + timedelta(seconds=5)
    r = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": ["u-1001", "u-1002"],
            "params": {"order_no": "AT5"},
            "send_at": send_at.isoformat(),
        },
        format="json",
    )
    assert r.status_code == 202 and r.json()["state"] == "scheduled"
    task_id = r.json()["id"]

    while datetime.now(UTC) < send_at - timedelta(milliseconds=300):
        assert smtp_server.messages == []
        assert MessageTask.objects.get(pk=task_id).state == "scheduled"
        time.sleep(0.2)
    wait_for(lambda: len(smtp_server.messages) >= 2, timeout=15, message="the two mails")
    arrived = datetime.now(UTC)
    task = wait_task(task_id)
    assert task.state == "completed"
    rows = DeliveryRecord.objects.filter(task=task)
    assert sorted(rows.values_list("channel", "state")) == [
        ("email", "sent"),
        ("email", "sent"),
        ("inapp", "delivered"),
        ("inapp", "delivered"),
    ]
    for d in rows:
        assert send_at <= d.sent_at <= send_at + timedelta(seconds=4), (d.sent_at, send_at)
    assert arrived - send_at < timedelta(seconds=6)
    assert sorted(smtp_server.recipients()) == ["user1@example.com", "user2@example.com"]


def test_tag_audience_is_fanned_out_by_a_worker_and_sent(workers, api):
    from tasks_app.services import upsert_recipient

    factories.published_template(channels=("inapp",))
    for i in range(30):
        upsert_recipient(external_id=f"t-{i}", tags=["vip"] if i % 3 == 0 else ["other"])
    r = api.post(
        "/api/v1/messages",
        {"template": "order_shipped", "recipients": {"tag": "vip"}, "params": {"order_no": "TAG"}},
        format="json",
    )
    assert r.status_code == 202 and r.json()["state"] == "tasked"
    task = wait_task(r.json()["id"])
    assert task.state == "completed" and task.recipient_count == 10
    rows = DeliveryRecord.objects.filter(task=task)
    assert rows.count() == 10 and set(rows.values_list("state", flat=True)) == {"delivered"}
    assert all(
        int(x.split("-")[1]) % 3 == 0 for x in rows.values_list("recipient__external_id", flat=True)
    )


def _seconds_to_next_minute(clock: datetime) -> float:
    nxt = clock.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return (nxt - clock).total_seconds()


def test_recurring_send_every_minute_makes_one_task_per_run(workers, beat):
    # The same content every minute: without a dedup window of 0 the second run's
    # message would be (rightly) skipped as a duplicate of the first.
    factories.published_template(channels=("inapp",), dedup_window_seconds=0)
    factories.recipients(1)
    rs = recurring.create_recurring_send(
        name="every minute",
        template="order_shipped",
        audience={"recipients": ["u-1001"]},
        params={"order_no": "EVERY"},
        channels=["inapp"],
        crontab="* * * * *",
        timezone="UTC",
    )

    # Beat's clock: 4 s before the next minute, so the first run comes right after start.
    shift = _seconds_to_next_minute(datetime.now(UTC)) - 4
    beat.shift(shift)
    beat.start("one", shifted=True)
    beat.start("two", shifted=True)  # a second beat (a restart overlapping, a misconfig)

    def runs() -> list[MessageTask]:
        return list(
            MessageTask.objects.filter(idempotency_key__startswith=f"recurring-{rs.pk}-").order_by(
                "created_at"
            )
        )

    wait_for(lambda: len(runs()) == 1, timeout=20, message="the first run")
    first = wait_task(runs()[0].pk)
    # Then two minutes in a few seconds: move beat's clock 3 s before the next minute.
    beat_now = datetime.now(UTC) + timedelta(seconds=shift)
    beat.shift(shift + _seconds_to_next_minute(beat_now) - 3)
    wait_for(lambda: len(runs()) == 2, timeout=20, message="the second run")
    second = wait_task(runs()[1].pk)
    time.sleep(1.5)  # both beats fired each run: any duplicate would show up by now
    tasks = runs()
    assert len(tasks) == 2
    minutes = [datetime.strptime(t.idempotency_key.rsplit("-", 1)[1], "%Y%m%dT%H%M") for t in tasks]
    assert minutes[1] - minutes[0] == timedelta(minutes=1)
    for task in (first, second):
        assert task.state == "completed" and task.created_by == "recurring:every minute"
        assert list(DeliveryRecord.objects.filter(task=task).values_list("state", flat=True)) == [
            "delivered"
        ]
    rs.refresh_from_db()
    assert rs.last_run_at.replace(tzinfo=None) == minutes[1]


class _GatedHandler(_SMTPHandler):
    """Accepts `accept_before_gate` mails, then holds the next in DATA while the gate is
    closed; a held mail is then refused (the client that sent it is gone), so only
    accepted mails count."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if (
            self.server.gate_closed.is_set()
            and len(self.server.messages) >= self.server.accept_before_gate
        ):
            self.server.holding.set()
            while self.server.gate_closed.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 not accepted"
        return await super().handle_DATA(server, session, envelope)


class GatedSMTPServer(SMTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.gate_closed = threading.Event()
        self.holding = threading.Event()
        self.accept_before_gate = 0
        self.controller = Controller(_GatedHandler(self), hostname=self.host, port=self.port)


@pytest.fixture
def gated_smtp():
    server = GatedSMTPServer().start()
    yield server
    server.gate_closed.clear()
    server.stop()


def _worker_running(task_name: str) -> str | None:
    from msgcenter.celery import app

    for worker, active in (app.control.inspect(timeout=1.0).active() or {}).items():
        if any(t["name"] == task_name for t in active):
            return worker.split("@")[0]
    return None


def test_worker_killed_mid_chunk_sweep_finishes_and_each_mail_arrives_once(
    workers, api, gated_smtp, settings
):
    factories.published_template(channels=("email",))
    factories.recipients(6)
    factories.smtp_account(gated_smtp)
    # Two mails of the chunk go out, the worker dies while the third is in flight.
    gated_smtp.accept_before_gate = 2
    gated_smtp.gate_closed.set()
    r = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": [f"u-{1000 + i}" for i in range(1, 7)],
            "params": {"order_no": "K1"},
        },
        format="json",
    )
    task_id = r.json()["id"]
    assert gated_smtp.holding.wait(timeout=20), "no mail reached the SMTP server"
    rows = DeliveryRecord.objects.filter(task_id=task_id)
    assert set(rows.values_list("state", flat=True)) == {"sending"}  # the chunk is claimed
    victim = wait_for(
        lambda: _worker_running("channels.send_chunk"),
        timeout=10,
        message="the worker sending the chunk",
    )
    workers.kill(victim)  # SIGKILL, pool children included, mid-chunk
    gated_smtp.gate_closed.clear()
    time.sleep(0.5)
    assert set(rows.values_list("state", flat=True)) == {"sending"}  # nobody finished it
    assert len(gated_smtp.messages) == 2  # accepted before the kill, never recorded in SQL

    # The beat tick, once the claim's lease has run out.
    lease = settings.MSGCENTER["SEND_LEASE_SECONDS"]
    swept = scheduler.sweep_stuck(now=datetime.now(UTC) + timedelta(seconds=lease + 1))
    assert swept == {"requeued": 6, "were_sending": 6}
    task = wait_task(task_id)
    assert task.state == "completed"
    wait_for(lambda: len(gated_smtp.messages) >= 6, timeout=10)
    time.sleep(1.0)  # would-be duplicates have had time to arrive
    rcpts = gated_smtp.recipients()
    assert len(rcpts) == 6 and len(set(rcpts)) == 6
    assert set(rows.values_list("state", "attempts")) == {("sent", 2)}
