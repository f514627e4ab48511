#!/usr/bin/env python
"""Django's command-line utility for Telemetron."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetron_site.settings")
    from django.core.management import execute_from_command_line

    from core.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        print(f"telemetron: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
