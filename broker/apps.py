from django.apps import AppConfig


class BrokerConfig(AppConfig):
    """The queue: the brokers django-q2 uses (ORM and Redis), their tables, the
    commit of a request's batches and the reads of the queue's state."""

    name = "broker"
    verbose_name = "Queue"
