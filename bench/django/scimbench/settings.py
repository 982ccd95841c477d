"""A minimal Django project serving django-scim2-server, for the benchmark comparison.

Production-like: DEBUG off, SQLite in WAL mode, only the apps the SCIM views need.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "benchmark-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim2_server",
]
MIDDLEWARE = []
ROOT_URLCONF = "scimbench.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DJANGO_DB", str(BASE_DIR / "bench.sqlite3")),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 5},
        # Under gthread workers each thread keeps its connection (django-serve.sh sets it).
        "CONN_MAX_AGE": int(os.environ.get("BENCH_DJANGO_CONN_MAX_AGE", "0")),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SCIM2_SERVER_AUTH_CHECK = "scimbench.auth.bearer_token"
LOGGING = {"version": 1, "disable_existing_loggers": False}
