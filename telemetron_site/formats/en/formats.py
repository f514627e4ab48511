"""How dates read everywhere in the admin and the dashboard (settings'
``FORMAT_MODULE_PATH``): one ISO-like form in UTC, ``2026-12-07 05:42:40 UTC``,
as ``manage.py dlq`` prints them, instead of Django's English locale's
``Dec. 7, 2026, 5:42 a.m.``. What is not set here is the locale's."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s T"
