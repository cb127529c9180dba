"""Settings, all from the environment (or a `.env` file beside manage.py, written by `make setup`).

AUTOGRID_ENV_FILE   the .env file to read (default <repo>/.env)
DJANGO_DEBUG        off unless set to 1/true
DJANGO_SECRET_KEY   required whenever DEBUG is off
DATABASE_URL        default sqlite:///<repo>/var/autogrid.sqlite3; postgres://user:pass@host:port/db uses psycopg 3
                    with Django's own connection pool
AUTOGRID_DATA_DIR   where the shared market data lives (default ../shared/data beside the repo)
AUTOGRID_VAR_DIR    caches, reports, lock files (default <repo>/var)
BINANCE_BASE_URL    one base URL for every Binance endpoint (the local fake server); unset = Binance itself
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(os.environ.get("AUTOGRID_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DEBUG is off: set it in the environment or in .env "
            "(`make setup` writes one), or set DJANGO_DEBUG=1 for local development"
        )
    SECRET_KEY = "insecure-debug-only-key"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

VAR_DIR = Path(env.str("AUTOGRID_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATA_DIR = Path(env.str("AUTOGRID_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data")))
BINANCE_BASE_URL = env.str("BINANCE_BASE_URL", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "grid_trading",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'autogrid.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": env.int("DATABASE_POOL_MAX", default=8)}
    _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django requires CONN_MAX_AGE 0 with it
    _db.setdefault("TEST", {})["NAME"] = env.str("DATABASE_TEST_NAME", default="test_autogrid")
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets a reader (status, dashboard) run beside the executor; the timeout waits out short write locks.
    _db.setdefault("OPTIONS", {}).update({"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": env.str("AUTOGRID_LOG_LEVEL", default="WARNING")},
}
