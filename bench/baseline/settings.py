"""The API baseline: msgcenter's own settings (same middleware, DRF, renderer, parser),
with a URLconf holding one bare DRF endpoint. Bench-only, never part of the product."""

from msgcenter.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.baseline.urls"
