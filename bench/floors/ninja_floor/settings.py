"""Minimal Django settings for the framework floor: no apps, no middleware, no
database. Only what django-ninja needs to route one sync endpoint."""

SECRET_KEY = "bench-framework-floor"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.floors.ninja_floor.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
USE_I18N = False
