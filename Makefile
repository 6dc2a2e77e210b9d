# msgcenter — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000

.PHONY: help venv install run test lint format migrate messages bench bench-quick clean

help:
	@echo "make run    - install, migrate, seed a demo and start web + worker + beat"
	@echo "make test   - install and run the whole suite (PostgreSQL and Redis required)"
	@echo "make lint   - ruff check and format check"
	@echo "make bench  - benchmarks (see bench/README.md)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# Setup (migrate, createcachetable, compilemessages, seed_demo) lives in msgcenter.run
# so that tests/test_quickstart.py boots exactly what this target boots.
run: install
	PORT=$(PORT) $(PY) -m msgcenter.run --setup

test: install
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: install
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv

# Benchmarks (bench/README.md): start their own database, sinks, gunicorn and workers.
# Never part of `make test`. BENCH_ARGS passes options, e.g. BENCH_ARGS="--only email".
bench: install
	bash bench/setup.sh
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick: install
	bash bench/setup.sh
	$(PY) -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
