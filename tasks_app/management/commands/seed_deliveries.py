"""Seed N synthetic deliveries (with their tasks, recipients and interactions) to try the
console and its dashboard at scale: `manage.py seed_deliveries 1000000`.

PostgreSQL: rows go in with COPY (ids reserved from the sequences first, so interactions
can point at their deliveries); elsewhere with bulk_create in big batches. Rows are spread
over the last --days days in realistic proportions: mostly delivered, some read and
clicked, a few failed with provider errors, some skipped by policy, a little backlog.
Every column a row does not set takes the model field's default, so the command keeps
working when models grow new fields."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from channels_app import rollup
from channels_app.models import DeliveryRecord, Interaction
from tasks_app.models import MessageTask, Recipient
from templates_app.models import MessageTemplate, TemplateStatus, TemplateVersion

CHANNELS = [("inapp", 45), ("email", 30), ("sms", 15), ("webhook", 5), ("dingtalk", 5)]
ERRORS = {
    "email": ["550 5.1.1 mailbox unavailable", "552 5.2.2 mailbox full", "SMTP connection refused"],
    "sms": [
        "isv.MOBILE_NUMBER_ILLEGAL: invalid phone number",
        "isv.BUSINESS_LIMIT_CONTROL: frequency limit",
        "HTTP 503 from provider",
    ],
    "webhook": ["HTTP 404 from webhook", "HTTP 500 from webhook", "timed out after 5.0s"],
    "dingtalk": ["errcode 310000: keywords not in content", "HTTP 502 from DingTalk"],
    "inapp": ["recipient inbox unavailable"],
}
SEED_TEMPLATES = [
    ("seed_order_shipped", "Order shipped (seed)", "notification"),
    ("seed_weekly_digest", "Weekly digest (seed)", "marketing"),
    ("seed_login_code", "Login code (seed)", "verification"),
    ("seed_disk_alert", "Disk alert (seed)", "alert"),
]


def _jsonable(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField):
        return json.dumps(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def copy_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """COPY `rows` (attname -> value) into the model's table; unset columns get the
    field's default."""
    if not rows:
        return
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField) and f.attname not in rows[0])
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    defaults = {f.attname: f.get_default() for f in fields}
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                [
                    _jsonable(f, row[f.attname] if f.attname in row else defaults[f.attname])
                    for f in fields
                ]
            )


def insert_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    if connection.vendor == "postgresql":
        copy_rows(model, rows)
    else:
        model.objects.bulk_create([model(**row) for row in rows], batch_size=2000)


def reserve_ids(model: type[models.Model], n: int) -> list[int]:
    """n ids from the table's sequence (PostgreSQL), safe beside concurrent inserts."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, n],
        )
        return [row[0] for row in cursor.fetchall()]


class Command(BaseCommand):
    help = "Create N synthetic deliveries with tasks, recipients and interactions."

    def add_arguments(self, parser) -> None:
        parser.add_argument("count", type=int, help="number of deliveries")
        parser.add_argument(
            "--days",
            type=int,
            default=30,
            help="spread creation times over the last N days (default 30)",
        )
        parser.add_argument(
            "--recipients",
            type=int,
            default=0,
            help="distinct recipients (default: count / 10, at most 200000)",
        )
        parser.add_argument("--batch", type=int, default=50_000)
        parser.add_argument("--seed", type=int, default=None, help="random seed")

    def handle(
        self,
        *args: Any,
        count: int,
        days: int,
        recipients: int,
        batch: int,
        seed: int | None,
        **options: Any,
    ) -> None:
        if count <= 0 or days <= 0 or batch <= 0:
            raise CommandError("count, --days and --batch must be positive.")
        rng = random.Random(seed)
        started = time.monotonic()
        versions = self._versions()
        people = self._recipients(recipients or max(10, min(count // 10, 200_000)))
        now = timezone.now()
        made = {"tasks": 0, "deliveries": 0, "interactions": 0}
        channels = [c for c, _ in CHANNELS]
        weights = [w for _, w in CHANNELS]
        while made["deliveries"] < count:
            size = min(batch, count - made["deliveries"])
            with transaction.atomic():
                tasks, deliveries, interactions = self._batch(
                    rng, size, versions, people, now, days, channels, weights
                )
                insert_rows(MessageTask, tasks)
                if connection.vendor == "postgresql":
                    for row, pk in zip(
                        deliveries, reserve_ids(DeliveryRecord, len(deliveries)), strict=True
                    ):
                        row["id"] = pk
                    insert_rows(DeliveryRecord, deliveries)
                    for item in interactions:
                        item["delivery_id"] = item.pop("_delivery")["id"]
                    insert_rows(Interaction, interactions)
                else:
                    objs = [DeliveryRecord(**row) for row in deliveries]
                    DeliveryRecord.objects.bulk_create(objs, batch_size=2000)
                    for row, obj in zip(deliveries, objs, strict=True):
                        row["id"] = obj.pk
                    for item in interactions:
                        item["delivery_id"] = item.pop("_delivery")["id"]
                    insert_rows(Interaction, interactions)
            made["tasks"] += len(tasks)
            made["deliveries"] += len(deliveries)
            made["interactions"] += len(interactions)
            self.stdout.write(f"  {made['deliveries']}/{count} deliveries")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (MessageTask, DeliveryRecord, Interaction):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        # The dashboard's rollup covers the seeded period at once (the tick keeps it).
        rollup.refresh(since=now - timedelta(days=days))
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {made['tasks']} tasks, {made['deliveries']} deliveries and "
                f"{made['interactions']} interactions for {len(people)} recipients "
                f"in {time.monotonic() - started:.1f}s."
            )
        )

    # --- building blocks ------------------------------------------------------------

    def _versions(self) -> list[TemplateVersion]:
        """The published versions to point tasks at (seed templates if there are none)."""
        from templates_app.services import create_template, publish_template

        published = list(
            TemplateVersion.objects.filter(
                template__status=TemplateStatus.PUBLISHED, version=models.F("template__version")
            ).select_related("template")
        )
        if published:
            return published
        for code, name, category in SEED_TEMPLATES:
            template = MessageTemplate.objects.filter(code=code).first() or create_template(
                code=code,
                name=name,
                category=category,
                contents=[
                    {"channel": c, "subject": name, "body": f"{name}: {{{{ n }}}}"}
                    for c, _w in CHANNELS
                ],
            )
            publish_template(template=template, by="seed")
        return list(
            TemplateVersion.objects.filter(template__code__startswith="seed_").select_related(
                "template"
            )
        )

    def _recipients(self, n: int) -> list[int]:
        ids = [f"seed-{i:07d}" for i in range(n)]
        for start in range(0, n, 5000):
            Recipient.objects.bulk_create(
                [
                    Recipient(
                        external_id=e,
                        name=f"Seed {e[5:]}",
                        email=f"{e}@example.test",
                        phone=f"+8613{int(e[5:]):09d}",
                    )
                    for e in ids[start : start + 5000]
                ],
                ignore_conflicts=True,
            )
        return list(
            Recipient.objects.filter(external_id__startswith="seed-")
            .order_by("id")
            .values_list("id", flat=True)[:n]
        )

    def _batch(
        self,
        rng: random.Random,
        size: int,
        versions: list[TemplateVersion],
        people: list[int],
        now: datetime,
        days: int,
        channels: list[str],
        weights: list[int],
    ) -> tuple[list[dict], list[dict], list[dict]]:
        tasks: list[dict] = []
        deliveries: list[dict] = []
        interactions: list[dict] = []
        span = days * 86400
        while len(deliveries) < size:
            version = rng.choice(versions)
            created = now - timedelta(seconds=rng.random() * span)
            n = min(rng.choice((1, 1, 1, 2, 3, 5)), size - len(deliveries))
            task_id = uuid.uuid4()
            rows = [
                self._delivery(
                    rng,
                    task_id,
                    rng.choice(people),
                    rng.choices(channels, weights)[0],
                    created,
                    now,
                )
                for _ in range(n)
            ]
            is_open = any(r["state"] in ("deferred", "queued") for r in rows)
            ok = any(r["state"] in ("sent", "delivered") for r in rows)
            tasks.append(
                {
                    "id": task_id,
                    "template_id": version.template_id,
                    "template_version_id": version.pk,
                    "channels": sorted({r["channel"] for r in rows}),
                    "state": "pushing" if is_open else ("completed" if ok else "failed"),
                    "recipient_count": n,
                    "delivery_count": n,
                    "created_by": "seed",
                    "created_at": created,
                    "finished_at": None
                    if is_open
                    else max((r["sent_at"] or r["failed_at"] or created) for r in rows),
                }
            )
            for row in rows:
                deliveries.append(row)
                if row["read_at"]:
                    interactions.append(
                        {"_delivery": row, "kind": "read", "created_at": row["read_at"]}
                    )
                    if rng.random() < 0.3:
                        interactions.append(
                            {
                                "_delivery": row,
                                "kind": "clicked",
                                "url": "https://shop.example/offer",
                                "created_at": row["read_at"]
                                + timedelta(seconds=rng.randint(2, 600)),
                            }
                        )
        return tasks, deliveries, interactions

    def _delivery(
        self,
        rng: random.Random,
        task_id: uuid.UUID,
        recipient_id: int,
        channel: str,
        created: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "task_id": task_id,
            "recipient_id": recipient_id,
            "channel": channel,
            "kind": "primary",
            "state": "delivered",
            "reason": "",
            "attempts": 1,
            "error": "",
            "attempt_log": [],
            "provider": "console",
            "address": f"seed-{recipient_id}",
            "content": {"subject": "seed", "body": "seed"},
            "created_at": created,
            "sent_at": None,
            "delivered_at": None,
            "read_at": None,
            "failed_at": None,
            "queued_at": created,
            "not_before": None,
            "lease_until": None,
            "provider_message_id": "",
        }
        roll = rng.random()
        latency = timedelta(seconds=rng.lognormvariate(0.3, 1.1))
        if roll < 0.05 and created < now - timedelta(hours=1):
            error = rng.choice(ERRORS[channel])
            row.update(
                state="failed",
                attempts=2,
                error=error,
                failed_at=created + latency * 3,
                attempt_log=[
                    {
                        "at": (created + latency).isoformat(),
                        "ok": False,
                        "error": "HTTP 503 from provider",
                        "permanent": False,
                        "provider": "console",
                        "account": None,
                    },
                    {
                        "at": (created + latency * 3).isoformat(),
                        "ok": False,
                        "error": error,
                        "permanent": True,
                        "provider": "console",
                        "account": None,
                    },
                ],
            )
        elif roll < 0.13:
            row.update(
                state="skipped",
                attempts=0,
                queued_at=None,
                reason=rng.choice(
                    ["opted_out", "deduplicated", "frequency_capped", "quiet_hours_dropped"]
                ),
            )
        elif roll < 0.145 and created > now - timedelta(hours=20):
            row.update(
                state="deferred",
                attempts=0,
                queued_at=None,
                not_before=now + timedelta(minutes=rng.randint(10, 600)),
            )
        elif roll < 0.15 and created > now - timedelta(hours=2):
            row.update(state="queued", attempts=0, lease_until=now + timedelta(days=1))
        else:
            sent = created + latency
            row.update(
                sent_at=sent,
                provider_message_id=f"seed-{uuid.uuid4().hex[:16]}",
                attempt_log=[
                    {
                        "at": sent.isoformat(),
                        "ok": True,
                        "error": "",
                        "permanent": False,
                        "provider": "console",
                        "account": None,
                    }
                ],
            )
            if roll < 0.35 and channel not in ("inapp",):
                row["state"] = "sent"
            else:
                row["delivered_at"] = sent + timedelta(seconds=rng.randint(0, 30))
                if channel in ("inapp", "email") and rng.random() < 0.4:
                    row["read_at"] = min(
                        now, row["delivered_at"] + timedelta(seconds=rng.randint(30, 6 * 3600))
                    )
        return row
