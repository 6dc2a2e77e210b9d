#!/usr/bin/env bash
# Install what the bench needs and the project does not: Debian's smtp-sink (postfix) and
# wrk, and a separate venv with django-post-office and the profilers. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

VAR=${BENCH_VAR:-var/bench}
mkdir -p "$VAR"

need=()
command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "bench setup: installing ${need[*]} from Debian"
  # postfix asks debconf questions and may try to start a mail server: neither is wanted.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || true
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null 2>&1 || echo "bench setup: apt-get install failed; falling back" >&2
fi

# django-post-office lives in its own venv so the product's requirements stay untouched.
PO_VENV="$VAR/po-venv"
if [ ! -x "$PO_VENV/bin/python" ] || ! "$PO_VENV/bin/pip" show -q django-post-office >/dev/null 2>&1; then
  echo "bench setup: creating $PO_VENV with django-post-office"
  python3 -m venv "$PO_VENV"
  "$PO_VENV/bin/pip" install -q --upgrade pip
  "$PO_VENV/bin/pip" install -q "Django==5.2.*" "django-post-office==3.*" "psycopg[binary]==3.*"
fi

# Profilers go into their own folder, put on PYTHONPATH when profiling (not requirements.txt).
PROF="$VAR/prof"
if [ ! -x "$PROF/bin/py-spy" ] || [ ! -d "$PROF/pyinstrument" ]; then
  echo "bench setup: installing py-spy and pyinstrument into $PROF"
  .venv/bin/pip install -q --target "$PROF" py-spy pyinstrument \
    || echo "bench setup: profilers unavailable" >&2
fi
echo "bench setup: ok (smtp-sink: $(command -v smtp-sink || echo /usr/sbin/smtp-sink), wrk: $(command -v wrk || echo none))"
