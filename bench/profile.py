"""Profile one message through the whole pipeline in one process (Celery eager) with
pyinstrument, on its own database:

    PYTHONPATH=var/bench/prof .venv/bin/python -m bench.profile --channel inapp --n 10000

Prints pyinstrument's text report (and writes an HTML one with --html PATH)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import infra


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", default="inapp", choices=("inapp", "email", "webhook"))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--db", default="msgcenter_bench_prof")
    parser.add_argument("--html", default="")
    args = parser.parse_args()

    infra.ensure_services()
    infra.recreate_db(args.db)
    env = infra.base_env(args.db)
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.update(env)
    infra.migrate(env)
    import django

    django.setup()
    from pyinstrument import Profiler
    from rest_framework.test import APIClient

    from . import scenarios

    ctx = scenarios.Ctx(sizes=scenarios.Sizes(), runs=1, workers_n=1, env=env, db=args.db)
    ctx.smtp = infra.SMTPSink()
    ctx.http = infra.HTTPSink()
    scenarios.setup_data(ctx, args.n)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ctx.api_key}")
    body = {"template": f"bench_{args.channel}", "channels": [args.channel],
            "params": {"order_no": "P1"}, "recipients": [f"r{i}" for i in range(1, args.n + 1)]}
    profiler = Profiler(interval=0.002)
    started = time.perf_counter()
    profiler.start()
    r = client.post("/api/v1/messages", body, format="json", HTTP_HOST="localhost")
    profiler.stop()
    seconds = time.perf_counter() - started
    assert r.status_code == 202, r.content
    print(f"{args.n} {args.channel} deliveries in {seconds:.2f}s "
          f"({args.n / seconds:,.0f}/s, one process, eager)", file=sys.stderr)
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        with open(args.html, "w") as f:
            f.write(profiler.output_html())
    infra.stop_all()


if __name__ == "__main__":
    main()
