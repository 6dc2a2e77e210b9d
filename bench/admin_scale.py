"""Admin at scale: time the delivery changelist and the dashboard at a small and a large
delivery table (rows generated in SQL). Runs in its own database; prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msgcenter.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from channels_app.models import DeliveryRecord  # noqa: E402
from tasks_app.models import MessageTask, Recipient  # noqa: E402
from templates_app.models import TemplateVersion  # noqa: E402
from templates_app.services import create_template, publish_template  # noqa: E402

PAGES = {"delivery_changelist": "/admin/channels_app/deliveryrecord/", "dashboard": "/admin/"}
TASKS = 200
RECIPIENTS = 5000


def seed() -> list[str]:
    template = create_template(
        code="bench_admin",
        name="Bench admin",
        category="notification",
        params_schema={},
        contents=[{"channel": "inapp", "subject": "Hello", "body": "Hello"}],
    )
    publish_template(template=template, by="bench")
    version = TemplateVersion.objects.get(template=template)
    Recipient.objects.bulk_create(
        [
            Recipient(external_id=f"r{i}", email=f"user{i}@bench.test")
            for i in range(1, RECIPIENTS + 1)
        ]
    )
    tasks = MessageTask.objects.bulk_create(
        [
            MessageTask(
                template=template,
                template_version=version,
                channels=["inapp", "email"],
                state="completed",
                created_by="bench",
            )
            for _ in range(TASKS)
        ]
    )
    return [str(t.pk) for t in tasks]


def grow(task_ids: list[str], upto: int) -> None:
    """Add rows until the delivery table has `upto` of them: a mix of channels and states
    spread over 30 days, like a busy install."""
    table = DeliveryRecord._meta.db_table
    have = DeliveryRecord.objects.count()
    if have >= upto:
        return
    recipient_min = Recipient.objects.order_by("id").values_list("id", flat=True).first()
    tasks = "ARRAY[" + ",".join(f"'{t}'::uuid" for t in task_ids) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (task_id, recipient_id, channel, kind, provider, address,
                mentions, content, state, reason, attempts, error, attempt_log,
                provider_message_id, created_at, queued_at, sent_at, delivered_at, failed_at)
            SELECT ({tasks})[1 + g %% {len(task_ids)}],
                   {recipient_min} + g %% {RECIPIENTS},
                   (ARRAY['inapp','email','webhook'])[1 + g %% 3], 'primary',
                   (ARRAY['inapp','smtp','webhook'])[1 + g %% 3], 'user' || g || '@bench.test',
                   '[]'::jsonb,
                   jsonb_build_object('subject', 'Order ' || g || ' shipped', 'body', 'Hello'),
                   (ARRAY['delivered','sent','sent','failed','queued','skipped'])[1 + g %% 6],
                   CASE WHEN g %% 6 = 5 THEN 'no_address' ELSE '' END,
                   1, CASE WHEN g %% 6 = 3 THEN 'HTTP 400 from provider' ELSE '' END, '[]'::jsonb,
                   'msg-' || g,
                   ts, ts, CASE WHEN g %% 6 IN (0,1,2) THEN ts END,
                   CASE WHEN g %% 6 = 0 THEN ts END, CASE WHEN g %% 6 = 3 THEN ts END
            FROM (SELECT g, now() - (g %% 2592000) * interval '1 second' AS ts
                  FROM generate_series(%s, %s) AS g) AS s
        """,
            [have + 1, upto],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")


def measure(client: Client, requests: int) -> dict[str, dict]:
    out = {}
    for name, url in PAGES.items():
        r = client.get(url, HTTP_HOST="localhost")  # warm-up (and check)
        if r.status_code != 200:
            raise SystemExit(f"{url} -> {r.status_code}")
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            r = client.get(url, HTTP_HOST="localhost")
            times.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "runs_ms": [round(t, 1) for t in times],
            "median_ms": round(statistics.median(times), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, required=True)
    parser.add_argument("--large", type=int, required=True)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    task_ids = seed()
    user = get_user_model().objects.create_superuser("bench", "bench@bench.test", "bench")
    client = Client()
    client.force_login(user)
    started = time.perf_counter()
    grow(task_ids, args.small)
    small = measure(client, args.requests)
    grow(task_ids, args.large)
    fill_s = time.perf_counter() - started
    large = measure(client, args.requests)
    print(
        json.dumps(
            {
                "rows": {"small": args.small, "large": args.large},
                "fill_s": round(fill_s, 1),
                "pages": {name: {"small": small[name], "large": large[name]} for name in PAGES},
            }
        )
    )


if __name__ == "__main__":
    main()
