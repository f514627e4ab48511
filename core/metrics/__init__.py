"""The metric series every app records into (series) and the helpers that record
them (recording). Exporting them (the multiprocess merge, scrape-time gauges,
``GET /metrics``) is :mod:`ops.metrics`'s."""
