"""`make bench` / `make bench-quick`: start what the scenarios need, run them, write
bench/results/latest.{json,md} (quick: quick.{json,md}).

    python -m bench.run [--quick] [--runs 3] [--workers 2] [--only email,webhook]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import infra, scenarios
from .infra import log

RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
ALL = ("email", "inapp", "fanout", "webhook", "queries", "api", "admin")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--db", default="msgcenter_bench")
    parser.add_argument("--out", default="", help="results file stem (default latest/quick)")
    args = parser.parse_args()
    chosen = [s for s in (args.only.split(",") if args.only else ALL) if s]
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    sizes = scenarios.QUICK if args.quick else scenarios.Sizes()
    started = time.perf_counter()
    infra.ensure_services()
    infra.recreate_db(args.db)
    env = infra.base_env(args.db)
    os.environ.update(env)
    log(f"database {args.db}: migrating")
    infra.migrate(env)

    import django

    django.setup()
    import redis

    for db in (infra.REDIS_DB, infra.REDIS_DB + 1):
        redis.Redis(host=infra.REDIS_HOST, port=infra.REDIS_PORT, db=db).flushdb()

    ctx = scenarios.Ctx(sizes=sizes, runs=args.runs, workers_n=args.workers, env=env, db=args.db)
    ctx.smtp = infra.SMTPSink()
    ctx.http = infra.HTTPSink()
    log(f"sinks up: {ctx.smtp.kind} on {ctx.smtp.port}, http on {ctx.http.port}")
    scenarios.setup_data(ctx, max(sizes.fanout, sizes.email, sizes.inapp))
    ctx.gunicorn = infra.Gunicorn(env)
    ctx.workers = infra.Workers(env, args.workers)
    ctx.workers.start()
    log(f"gunicorn on {ctx.gunicorn.port}, {args.workers} workers up")

    results: dict[str, Any] = {}
    plan = [
        ("email", lambda: scenarios.scenario_email(ctx)),
        ("inapp", lambda: scenarios.scenario_inapp(ctx, sizes.inapp, with_ceiling=False)),
        ("fanout", lambda: scenarios.scenario_inapp(ctx, sizes.fanout, with_ceiling=True)),
        ("webhook", lambda: scenarios.scenario_webhook(ctx)),
        ("queries", lambda: scenarios.scenario_queries(ctx)),
        ("api", lambda: (ctx.workers.stop(), scenarios.scenario_api(ctx))[1]),
        ("admin", lambda: scenarios.scenario_admin(ctx)),
    ]
    failed = False
    for name, fn in plan:
        if name not in chosen:
            continue
        log(f"scenario {name}")
        t = time.perf_counter()
        try:
            results[name] = fn()
            results[name]["wall_s"] = round(time.perf_counter() - t, 1)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            failed = True
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    ctx.workers.stop()
    ctx.gunicorn.stop()
    infra.stop_all()

    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if args.quick else "full",
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": args.runs,
        "workers": args.workers,
        "smtp_sink": ctx.smtp.kind,
        "wall_s": round(time.perf_counter() - started, 1),
        "scenarios": results,
    }
    stem = args.out or ("quick" if args.quick else "latest")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    log(f"wrote {RESULTS / stem}.json and .md in {report['wall_s']}s")
    return 1 if failed else 0


def _rate(x: dict[str, Any]) -> str:
    return f"{x['per_s']:,.0f}/s ({x['median_s']:.2f} s)"


def markdown(report: dict[str, Any]) -> str:
    s = report["scenarios"]
    rows = []

    def row(name: str, ours: str, peer: str, ratio: str, target: str, met: Any) -> None:
        rows.append(f"| {name} | {ours} | {peer} | {ratio} | {target} | {'yes' if met else 'no'} |")

    for key in ("email", "inapp", "fanout", "webhook", "api", "admin"):
        r = s.get(key)
        if r is None:
            continue
        if "error" in r:
            rows.append(f"| {key} | error: {r['error'][:80]} | | | | |")
            continue
        if key == "email":
            row(
                f"email end to end, {r['n']:,} mails",
                _rate(r["msgcenter"]),
                f"post-office {_rate(r['post_office'])}; smtplib ceiling {_rate(r['ceiling'])}",
                f"{r['ratio_vs_peer']}x post-office; {r['ratio_vs_ceiling']:.0%} of ceiling",
                "≥ 3x post-office",
                r["met"],
            )
        elif key == "inapp":
            rows.append(
                f"| in-app, {r['n']:,} recipients in one request | "
                f"{_rate(r['msgcenter'])} | — | — | (issue 3 measure) | — |"
            )
        elif key == "fanout":
            row(
                f"in-app fan-out, {r['n']:,} recipients",
                _rate(r["msgcenter"]),
                f"COPY ceiling {_rate(r['ceiling'])}",
                f"{r['ratio_vs_ceiling']:.1%} of COPY",
                "≥ 30,000/s and ≥ 10% of COPY",
                r["met"],
            )
        elif key == "webhook":
            row(
                f"webhook, {r['n']:,} deliveries",
                _rate(r["msgcenter"]),
                f"httpx loop {_rate(r['ceiling'])}",
                f"{r['ratio_vs_ceiling']:.0%} of httpx",
                "≥ 50% of httpx",
                r["met"],
            )
        elif key == "api":
            m, b = r["msgcenter"], r["bare_drf"]
            row(
                f"API, {r['connections']} connections",
                f"{m['rps']:,.0f} req/s, p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms",
                f"bare DRF {b['rps']:,.0f} req/s, p99 {b['p99_ms']:.1f} ms",
                f"{r['ratio_vs_peer']:.0%} of bare DRF",
                "≥ 50%, p99 < 50 ms",
                r["met"],
            )
        elif key == "admin":
            rows_ = r["rows"]
            for page, v in r["pages"].items():
                row(
                    f"admin {page.replace('_', ' ')}",
                    f"{v['large']['median_ms']:.0f} ms at {rows_['large']:,} rows",
                    f"{v['small']['median_ms']:.0f} ms at {rows_['small']:,} rows",
                    f"{r['ratio_large_vs_small'][page]}x",
                    "≤ 2x",
                    r["ratio_large_vs_small"][page] <= 2,
                )
    lines = [
        f"# msgcenter benchmarks ({report['mode']})",
        "",
        f"{report['generated_at']} · {report['machine']['cores']} cores · Python "
        f"{report['machine']['python']} · {report['workers']} Celery workers · median of "
        f"{report['runs']} runs · SMTP sink: {report['smtp_sink']}",
        "",
        "| scenario | msgcenter | peer / ceiling | ratio | target | met |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    q = s.get("queries")
    if q and "error" not in q:
        lines += [
            "SQL queries per 1,000 deliveries (API request + planning + sending, "
            "counted in-process): "
            f"in-app {q['inapp']['queries_per_1000']} ({q['inapp']['queries']} for "
            f"{q['inapp']['deliveries']:,}), email {q['email']['queries_per_1000']} "
            f"({q['email']['queries']} for {q['email']['deliveries']:,}).",
            "",
        ]
    lines += [
        "Ratios compare figures measured in the same run on the same machine; absolute "
        "numbers on a shared machine are noisy. See bench/README.md.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
