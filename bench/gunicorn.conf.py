"""One gunicorn configuration for msgcenter and the bare DRF baseline alike."""

import multiprocessing
import os

bind = os.environ.get("BENCH_BIND", "127.0.0.1:8900")
workers = int(os.environ.get("BENCH_GUNICORN_WORKERS", 2 * multiprocessing.cpu_count()))
worker_class = "sync"
# The in-app fan-out posts 100,000 recipients in one request.
timeout = 600
backlog = 2048
accesslog = None
loglevel = "warning"
