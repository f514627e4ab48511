"""Prometheus metrics: the series (series), recording into them (recording), the
multiprocess merge (multiproc), gauges computed at scrape time (collectors) and
``GET /metrics`` (view)."""
