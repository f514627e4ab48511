"""Every error answer of the API has one shape, ``{"error": "...", "details": [...]}``
in JSON (telemetron_site.errors.error_response): each error status the OpenAPI
document declares for each operation, provoked for real; a method a path does not
take (405); a path nothing matches (404, except under the admin, which keeps
Django's pages); a bug (500); and Django's own 400/403/404/500 handlers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings

from ingest.backpressure import QueueGate, queue_gate
from ops.broker import broker
from plugins import live
from plugins.base import Event, PluginParams, PluginSpec, Validator
from plugins.chains import Chains
from plugins.registry import get_registry
from processing.models import QueuedTask
from sources.live import live_directory
from sources.services import read_token_create, source_create
from telemetron_site import urls
from telemetron_site.api import api
from tests.conftest import event
from tests.support.client import post

pytestmark = pytest.mark.django_db

Answer = Any  # the test client's response
Provoke = Callable[[str, str], Answer]


def _declared() -> list[tuple[str, str, int]]:
    """(method, path, status) of every error status of every operation the
    OpenAPI document holds."""
    return [
        (method.upper(), path, int(status))
        for path, operations in api.get_openapi_schema()["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if int(status) >= 400
    ]


DECLARED = _declared()


def assert_error_shape(response: Answer, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json", response.content
    out: dict[str, Any] = response.json()
    assert set(out) >= {"error", "details"}, out
    assert isinstance(out["error"], str) and out["error"], out
    assert isinstance(out["details"], list), out
    return out


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _valid(path: str) -> Any:
    """A body the operation at ``path`` takes."""
    if path == "/ingest":
        return event(7)
    if path == "/ingest/batch":
        return [event(7), event(7)]
    if path == "/v1/batch":
        return {"batch": [{"type": "page"}, {"type": "page"}]}
    return {"event": "Signed Up", "userId": "u1"}


class Provokers:
    """One way to make each operation answer each error status it declares."""

    def __init__(self, client: Client, use_config: Callable[..., Any]) -> None:
        self.client, self.use_config = client, use_config
        _, made = source_create(source_id=7, name="app")
        self.key = _basic(made.value)
        _, off = source_create(source_id=8, name="retired", enabled=False)
        self.off_key = _basic(off.value)

    def send(self, method: str, path: str, data: Any = None, **headers: str) -> Answer:
        if method == "GET":
            return self.client.get(path, headers=headers)
        if path.startswith("/v1/"):
            headers = {**self.key, **headers}
        return post(self.client, path, data if data is not None else _valid(path), **headers)

    def status_400(self, method: str, path: str) -> Answer:
        if method == "GET":
            return self.send(method, path.replace("{source_id}", "abc"))
        return self.send(method, path, b"{bad")

    def status_401(self, method: str, path: str) -> Answer:
        self.use_config(ingest={"auth": "required"}, security={"read_auth": "token"})
        if path.startswith("/v1/"):
            return post(self.client, path, _valid(path))
        return self.send(method, path.replace("{source_id}", "7"))

    def status_403(self, method: str, path: str) -> Answer:
        self.use_config(ingest={"auth": "required"}, security={"read_auth": "token"})
        if method == "GET":
            other = "stats" if path == "/metrics" else "metrics"
            _, token = read_token_create(name="t", scope=other)
            bearer = {"Authorization": f"Bearer {token.value}"}
            return self.send(method, path.replace("{source_id}", "7"), **bearer)
        if path.startswith("/v1/"):
            return self.send(method, path, **self.off_key)
        data = [event(8)] if path.endswith("batch") else event(8)  # the key is source 7's
        return self.send(method, path, data, **self.key)

    def status_404(self, method: str, path: str) -> Answer:
        return self.send(method, path.replace("{source_id}", "99"))

    def status_413(self, method: str, path: str) -> Answer:
        if path.startswith("/v1/"):  # more messages of the source than its burst
            _, made = source_create(source_id=10, name="limited", rate_limit=1, rate_burst=1)
            live_directory.reset()
            return self.send(method, path, **_basic(made.value))
        self.use_config(ingest={"max_body_bytes": 64})
        return self.send(method, path, [event(7, data="x" * 64)])

    def status_415(self, method: str, path: str) -> Answer:
        return self.send(method, path, **{"Content-Encoding": "br"})

    def status_429(self, method: str, path: str) -> Answer:
        _, made = source_create(source_id=11, name="slow", rate_limit=0.001, rate_burst=1)
        live_directory.reset()
        key = _basic(made.value)
        one: Any = {
            "/ingest": event(11),
            "/ingest/batch": [event(11)],
            "/v1/batch": {"batch": [{"type": "page"}]},
        }.get(path)
        assert self.send(method, path, one, **key).status_code in (200, 202)
        return self.send(method, path, one, **key)

    def status_503(self, method: str, path: str) -> Answer:
        if path == "/readyz":  # a worker cluster is needed and none reports
            with override_settings(Q_CLUSTER={**settings.Q_CLUSTER, "sync": False}):
                return self.send(method, path)
        return self.send(method, path)  # (the gated fixture: the queue's backlog is full)


@pytest.fixture
def provokers(client: Client, use_config: Callable[..., Any]) -> Provokers:
    return Provokers(client, use_config)


@pytest.fixture
def gated() -> Iterator[None]:
    """A full backlog (one batch waiting, the limit one) only for 503s."""
    depth = lambda: int(broker().queue_size())  # noqa: E731
    with queue_gate.override(QueueGate(limit=1, depth=depth, retry_after=2, interval_s=0)):
        waiting = broker().enqueue("waiting")
        yield
        QueuedTask.objects.filter(pk=waiting).delete()


def test_the_sweep_holds_every_operation_but_the_liveness_probe() -> None:
    operations = {(m, p) for m, p, _ in DECLARED}
    assert len(operations) == 13, operations
    assert ("GET", "/healthz") not in operations  # (it has no error to answer)


@pytest.mark.parametrize(("method", "path", "status"), DECLARED)
def test_every_declared_error_of_every_operation_has_the_one_shape(
    provokers: Provokers, request: pytest.FixtureRequest, method: str, path: str, status: int
) -> None:
    provoke: Provoke = getattr(provokers, f"status_{status}")  # (none: a status to provoke)
    if status == 503 and path != "/readyz":
        request.getfixturevalue("gated")
    assert_error_shape(provoke(method, path), status)


def test_a_method_a_path_does_not_take_is_a_405_with_allow(client: Client) -> None:
    for method, path, allowed in [
        ("GET", "/ingest", "OPTIONS, POST"),
        ("DELETE", "/ingest/batch", "OPTIONS, POST"),
        ("GET", "/v1/track", "OPTIONS, POST"),
        ("POST", "/stats", "GET"),
        ("PUT", "/stats/7", "GET"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/readyz", "GET"),
        ("POST", "/metrics", "GET"),
    ]:
        response = client.generic(method, path)
        out = assert_error_shape(response, 405)
        assert response["Allow"] == allowed
        assert out["error"] == f"Method {method} is not allowed here; use {allowed}"


@pytest.mark.parametrize(
    "path",
    [
        "/ingest/nope",
        "/ingest/",
        "/v1/nope",
        "/v1",
        "/stats/x/y",
        "/stats/",
        "/healthz/x",
        "/metrics/",
        "/readyz/x",
        "/",
        "/nope",
        "/static/nothing-here.js",
    ],
)
def test_a_path_nothing_matches_is_a_json_404(client: Client, path: str) -> None:
    out = assert_error_shape(client.get(path), 404)
    assert out["error"] == f"Nothing at {path}: see /docs for the API's paths"
    assert_error_shape(post(client, path, event()), 404)


def test_the_admin_keeps_its_html_404(admin_client: Client) -> None:
    response = admin_client.get("/admin/nope/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


class BuggyValidator(Validator):
    name = "Buggy"
    Params = PluginParams

    def validate(self, event: Event) -> None:
        raise KeyError("a bug")


def test_a_bug_is_a_500_that_shows_nothing_of_it(provokers: Provokers) -> None:
    base = Chains.build([PluginSpec("processor", "StorageProcessor", {})], get_registry())
    live.reset(Chains(validators=(BuggyValidator(PluginParams()),), processors=base.processors))
    for path in ["/ingest", "/ingest/batch", "/v1/batch", "/v1/track", "/v1/identify"]:
        out = assert_error_shape(provokers.send("POST", path), 500)
        assert out == {"error": "Internal server error", "details": []}


@pytest.mark.parametrize(
    ("handler", "args"),
    [
        (urls.bad_request, (ValueError("x"),)),
        (urls.permission_denied, (ValueError("x"),)),
        (urls.not_found, (ValueError("x"),)),
        (urls.server_error, ()),
    ],
)
def test_djangos_own_error_answers_are_json_outside_the_admin(handler: Any, args: Any) -> None:
    factory = RequestFactory()
    response = handler(factory.get("/ingest/x"), *args)
    assert response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)) == {"error", "details"}
    admin = handler(factory.get("/admin/x"), *args)
    assert admin.status_code == response.status_code
    assert admin["Content-Type"].startswith("text/html")
    assert handler in (urls.handler400, urls.handler403, urls.handler404, urls.handler500)
