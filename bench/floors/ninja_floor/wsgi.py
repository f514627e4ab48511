"""WSGI entry point of the framework floor."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floors.ninja_floor.settings")

application = get_wsgi_application()
