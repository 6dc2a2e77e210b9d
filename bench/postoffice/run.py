"""django-post-office side of the email scenario: per run, `mail.send_many` of N emails
(one recipient each, rendered from an EmailTemplate with per-recipient context), then
`send_queued` in a loop until nothing is queued. Prints one JSON line per run."""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "po_settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from post_office import mail  # noqa: E402
from post_office.models import Email, EmailTemplate, Log  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--lockfile", default="/tmp/msgcenter-bench-post-office")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    template, _ = EmailTemplate.objects.update_or_create(
        name="order_shipped",
        defaults={
            "subject": "Order {{ order_no }} shipped",
            "content": "Hi {{ name }}, your order {{ order_no }} is on its way.",
            "html_content": "<p>Your order <b>{{ order_no }}</b> is on its way.</p>",
        },
    )
    print(json.dumps({"ready": True}), flush=True)
    for run in range(args.runs):
        # Wait for the orchestrator to say go (it resets its sink counter first).
        if sys.stdin.readline().strip() != "go":
            return
        Log.objects.all().delete()
        Email.objects.all().delete()
        batch = [
            {
                "sender": "noreply@msgcenter.test",
                "recipients": [f"user{i}@bench.test"],
                "template": template,
                "context": {"name": f"User {i}", "order_no": f"A{run}-{i}"},
            }
            for i in range(args.n)
        ]
        started = time.perf_counter()
        mail.send_many(batch)
        # post-office's own loop: send_queued batch by batch until nothing is queued.
        mail.send_queued_mail_until_done(lockfile=args.lockfile, processes=args.processes)
        seconds = time.perf_counter() - started
        sent = Email.objects.filter(status=0).count()
        print(json.dumps({"run": run, "seconds": seconds, "sent": sent}), flush=True)


if __name__ == "__main__":
    main()
