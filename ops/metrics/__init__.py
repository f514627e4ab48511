"""Exporting the metrics of :mod:`core.metrics`: the multiprocess merge
(multiproc), gauges computed at scrape time (collectors) and ``GET /metrics``
(view)."""
