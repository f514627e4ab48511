"""The framework floor: Django + django-ninja, one sync endpoint, no middleware."""
