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
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="post the request this many times (e.g. --n 1 --repeat 500)",
    )
    parser.add_argument(
        "--request-only",
        action="store_true",
        help="profile the API request alone (planning is queued, not run)",
    )
    args = parser.parse_args()

    infra.ensure_services()
    infra.recreate_db(args.db)
    env = infra.base_env(args.db)
    env["CELERY_TASK_ALWAYS_EAGER"] = "0" if args.request_only else "1"
    os.environ.update(env)
    infra.migrate(env)
    import django

    django.setup()
    import redis

    for db in (infra.REDIS_DB, infra.REDIS_DB + 1):  # no dedup stamps from an earlier run
        redis.Redis(host=infra.REDIS_HOST, port=infra.REDIS_PORT, db=db).flushdb()
    from pyinstrument import Profiler
    from rest_framework.test import APIClient

    from . import scenarios

    ctx = scenarios.Ctx(sizes=scenarios.Sizes(), runs=1, workers_n=1, env=env, db=args.db)
    ctx.smtp = infra.SMTPSink()
    ctx.http = infra.HTTPSink()
    scenarios.setup_data(ctx, args.n)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ctx.api_key}")
    body = {
        "template": f"bench_{args.channel}",
        "channels": [args.channel],
        "params": {"order_no": "P1"},
        "recipients": [f"r{i}" for i in range(1, args.n + 1)],
    }
    profiler = Profiler(interval=0.002)
    if args.channel == "webhook":
        # One delivery per task: n planned one-delivery tasks, as the bench's scenario.
        from channels_app.sending import enqueue_ids

        ids = scenarios.make_webhook_tasks(args.n, 0)
    cpu = time.process_time()
    started = time.perf_counter()
    profiler.start()
    if args.channel == "webhook":
        enqueue_ids("webhook", ids)
    else:
        for _ in range(args.repeat):
            r = client.post("/api/v1/messages", body, format="json", HTTP_HOST="localhost")
    profiler.stop()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    total = args.n * (1 if args.channel == "webhook" else args.repeat)
    if args.channel != "webhook":
        assert r.status_code == 202, r.content
    print(f"delivery states: {scenarios.delivery_states()}", file=sys.stderr)
    from django.db import connection

    from msgcenter.celery import app

    app.control.purge()

    with connection.cursor() as cursor:  # row versions written (statistics lag a little)
        time.sleep(1)
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = 'channels_app_deliveryrecord'"
        )
        inserted, updated = cursor.fetchone()
    print(
        f"delivery rows inserted {inserted}, row updates {updated} "
        f"({updated / total:.1f} per delivery)",
        file=sys.stderr,
    )
    print(
        f"{total} {args.channel} deliveries in {seconds:.2f}s "
        f"({total / seconds:,.0f}/s, one process, eager; {cpu:.2f}s CPU in this process)",
        file=sys.stderr,
    )
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        with open(args.html, "w") as f:
            f.write(profiler.output_html())
    infra.stop_all()


if __name__ == "__main__":
    main()
