from django.apps import AppConfig


class BrokerConfig(AppConfig):
    """The queue: the brokers django-q2 uses (ORM and Redis), their tables, the
    commit of a request's batches and the reads of the queue's state."""

    name = "broker"
    verbose_name = "Queue"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from broker.workers import task_finished, task_started

        # The queue worker holds the claim of the task it runs (broker/workers.py).
        pre_execute.connect(task_started, dispatch_uid="telemetron.broker.adopt")
        post_execute_in_worker.connect(task_finished, dispatch_uid="telemetron.broker.settle")
