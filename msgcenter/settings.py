"""msgcenter settings, read from the environment (12-factor).

Every setting has a default that lets `make run` start on a bare machine:
SQLite under var/, kombu's filesystem broker under var/, a generated secret key.
Set DATABASE_URL / CELERY_BROKER_URL / REDIS_URL for PostgreSQL and Redis.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MSGCENTER_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Public base URL used to build absolute links (unsubscribe, click tracking).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{env_int('PORT', 8000)}")

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "templates_app",
    "channels_app",
    "tasks_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "msgcenter.urls"
WSGI_APPLICATION = "msgcenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "msgcenter" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'msgcenter.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file in the quick start: wait on locks, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True

# --- Redis: rate limits, dedup, token caches ------------------------------------
# Unset in the quick start: msgcenter.kv falls back to the database cache so that
# web, worker and beat still share counters without a Redis server.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "msgcenter",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "msgcenter_cache",
        }
    }

# --- Celery ----------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Above the longest task (a send chunk with retries stays well under this).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        # Message priorities (0 first): a verification code never waits behind a campaign
        # in the same queue. Task priority high/normal/low -> 0/3/6.
        "priority_steps": [0, 3, 6, 9],
        "queue_order_strategy": "priority",
        "sep": ":",
    }
CELERY_TASK_DEFAULT_PRIORITY = 3
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "dispatch"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# DatabaseScheduler that also tells a recurring run when beat fired it.
CELERY_BEAT_SCHEDULER = "tasks_app.beat:Scheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Email (defaults for the `smtp` provider when an account leaves a key out) -----
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "msgcenter@localhost")

# --- REST API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["msgcenter.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["msgcenter.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["msgcenter.auth.ClientRateThrottle"],
    "EXCEPTION_HANDLER": "msgcenter.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "msgcenter API",
    "DESCRIPTION": "Self-hosted message center: templates, tasks, deliveries, inbox.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # One named enum for choice sets that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "channels_app.channels.CHANNELS",
        "CategoryEnum": "templates_app.models.Category",
    },
}

# --- Pipeline tuning -------------------------------------------------------------
MSGCENTER = {
    "MAX_RECIPIENTS_PER_REQUEST": env_int("MSGCENTER_MAX_RECIPIENTS", 10_000),
    "PLAN_BATCH_SIZE": env_int("MSGCENTER_PLAN_BATCH", 1000),
    "SEND_CHUNK_SIZE": env_int("MSGCENTER_SEND_CHUNK", 200),
    "SEND_LEASE_SECONDS": env_int("MSGCENTER_SEND_LEASE", 300),
    "RETRY_BASE_SECONDS": float(os.environ.get("MSGCENTER_RETRY_BASE", "2")),
    "RETRY_MAX_SECONDS": float(os.environ.get("MSGCENTER_RETRY_MAX", "600")),
    "MAX_ATTEMPTS": {"default": env_int("MSGCENTER_MAX_ATTEMPTS", 5)},
    "IDEMPOTENCY_TTL_HOURS": env_int("MSGCENTER_IDEMPOTENCY_TTL_HOURS", 48),
    "RELEASE_DUE_SECONDS": float(os.environ.get("MSGCENTER_RELEASE_DUE_SECONDS", "5")),
    "SWEEP_STUCK_SECONDS": float(os.environ.get("MSGCENTER_SWEEP_STUCK_SECONDS", "30")),
    # Policies (docs/scheduling.md). Quiet hours used while no QuietHours row exists
    # ("22:00-08:00"; "off" for none), in the recipient's timezone.
    "DEFAULT_QUIET_HOURS": os.environ.get("MSGCENTER_DEFAULT_QUIET_HOURS", "22:00-08:00"),
    "DEFAULT_QUIET_CATEGORIES": os.environ.get("MSGCENTER_DEFAULT_QUIET_CATEGORIES", "marketing"),
    "DEFAULT_QUIET_ACTION": os.environ.get("MSGCENTER_DEFAULT_QUIET_ACTION", "defer"),
    # Same recipient + template + channel + rendered content within N s: skipped. 0: off.
    "DEDUP_WINDOW_SECONDS": env_int("MSGCENTER_DEDUP_WINDOW", 300),
    # At most N per recipient, channel and local day, per category ("marketing=3,alert=20").
    "DAILY_CAPS": {
        k.strip(): int(v)
        for k, _, v in (
            item.partition("=") for item in env_list("MSGCENTER_DAILY_CAPS", "marketing=3")
        )
    },
    # Audiences ({"tag": ...} / {"all": true}) are fanned out by a worker in chunks.
    "FAN_OUT_CHUNK": env_int("MSGCENTER_FAN_OUT_CHUNK", 2000),
    "RATE_LIMIT_RETRY_SECONDS": float(os.environ.get("MSGCENTER_RATE_LIMIT_RETRY", "1")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # httpx logs each request line at INFO, and providers put tokens and app secrets
        # in query strings.
        "httpx": {"level": "WARNING"},
    },
}

from msgcenter.unfold_conf import UNFOLD  # noqa: E402,F401

# Beat ticks (DESIGN §5.6). RecurringSend crontabs are added as PeriodicTasks by the app.
CELERY_BEAT_SCHEDULE = {
    "release-due": {
        "task": "tasks.release_due",
        "schedule": MSGCENTER["RELEASE_DUE_SECONDS"],
        "options": {"queue": "dispatch", "expires": MSGCENTER["RELEASE_DUE_SECONDS"] * 2},
    },
    "sweep-stuck": {
        "task": "tasks.sweep_stuck",
        "schedule": MSGCENTER["SWEEP_STUCK_SECONDS"],
        "options": {"queue": "dispatch", "expires": MSGCENTER["SWEEP_STUCK_SECONDS"] * 2},
    },
    # The dashboard's hourly rollup (channels_app.rollup).
    "rollup-stats": {
        "task": "channels.rollup_stats",
        "schedule": 60.0,
        "options": {"queue": "dispatch", "expires": 120},
    },
}
