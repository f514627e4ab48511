"""WSGI entry point (served by granian's WSGI interface, see `manage.py serve`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetron_site.settings")

application = get_wsgi_application()
