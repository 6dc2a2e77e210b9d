"""SQL queries per 1,000 deliveries (issue 3): one API request of N in-app recipients, then
one of M emails, each run through the whole pipeline in this process (Celery eager), with
every SQL statement counted. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msgcenter.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from channels_app.models import DeliveryRecord  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def count(client: APIClient, template: str, channel: str, n: int) -> dict:
    counter = Counter()
    with connection.execute_wrapper(counter):
        r = client.post(
            "/api/v1/messages",
            {
                "template": template,
                "channels": [channel],
                "params": {"order_no": "Q1"},
                "recipients": [f"r{i}" for i in range(1, n + 1)],
            },
            format="json",
            HTTP_HOST="localhost",
        )
    assert r.status_code == 202, r.content
    states = dict(
        DeliveryRecord.objects.filter(task_id=r.json()["id"])
        .values_list("state")
        .annotate(n=django.db.models.Count("id"))
        .order_by()
    )
    done = states.get("delivered", 0) + states.get("sent", 0)
    assert done == n, states
    return {
        "deliveries": n,
        "queries": counter.n,
        "queries_per_1000": round(counter.n * 1000 / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inapp", type=int, required=True)
    parser.add_argument("--email", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {args.key}")
    result = {
        "inapp": count(client, "bench_inapp", "inapp", args.inapp),
        "email": count(client, "bench_email", "email", args.email),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
