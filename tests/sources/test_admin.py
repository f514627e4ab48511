"""Sources, write keys and read tokens in the admin: a source created with its
key shown once (only the digest stored), keys rotated and revoked, tokens made;
staff with the view permission only can do none of it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from sources.keys import digest
from sources.models import ReadToken, Source, WriteKey
from sources.services import source_create

pytestmark = pytest.mark.django_db

KEY = re.compile(r"tl[wr]_[A-Za-z0-9_-]{40}")
SOURCES = "/admin/sources/source/"
KEYS = "/admin/sources/writekey/"
TOKENS = "/admin/sources/readtoken/"


def _staff(username: str, *perms: str) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor() -> Client:
    return _staff(
        "editor",
        *(
            f"{verb}_{model}"
            for verb in ("view", "add", "change")
            for model in ("source", "writekey", "readtoken")
        ),
    )


@pytest.fixture
def viewer() -> Client:
    return _staff("viewer", "view_source", "view_writekey", "view_readtoken")


def test_a_source_added_in_the_admin_shows_its_key_once(editor: Client) -> None:
    response = editor.post(
        f"{SOURCES}add/",
        {
            "source_id": "42",
            "name": "shop",
            "enabled": "on",
            "origins": "https://shop.example\nhttp://localhost:3000",
            "rate_limit": "20",
            "rate_burst": "",
            "keys-TOTAL_FORMS": "0",
            "keys-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    [key] = KEY.findall(response.content.decode())
    source = Source.objects.get(source_id=42)
    assert source.allowed_origins == ["http://localhost:3000", "https://shop.example"]
    assert WriteKey.objects.get(source=source).digest == digest(key)
    listing = editor.get(SOURCES).content.decode()
    assert "shop" in listing and key not in listing
    change = editor.get(f"{SOURCES}{source.pk}/change/").content.decode()
    assert key[:12] in change and key not in change


@pytest.mark.parametrize(
    ("source_id", "ok"), [("0", True), (str(2**64 - 1), True), (str(2**64), False), ("-1", False)]
)
def test_source_ids_cover_the_u64_range(editor: Client, source_id: str, ok: bool) -> None:
    form = {
        "source_id": source_id,
        "name": "edge",
        "origins": "",
        "keys-TOTAL_FORMS": "0",
        "keys-INITIAL_FORMS": "0",
    }
    response = editor.post(f"{SOURCES}add/", form)
    assert Source.objects.filter(name="edge").exists() is ok
    if ok:
        assert Source.objects.get(name="edge").source_id == int(source_id)
    else:
        assert "Ensure this value is" in response.content.decode()


def test_a_bad_origin_is_refused_with_the_fields_message(editor: Client) -> None:
    response = editor.post(
        f"{SOURCES}add/",
        {
            "source_id": "1",
            "name": "x",
            "origins": "shop.example/path",
            "keys-TOTAL_FORMS": "0",
            "keys-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not Source.objects.exists()


def test_rotate_then_revoke_from_the_admin(editor: Client) -> None:
    source, first = source_create(source_id=7, name="blog")
    response = editor.post(SOURCES, {"action": "rotate_keys", "_selected_action": [source.pk]})
    assert response.status_code == 200
    [second] = KEY.findall(response.content.decode())
    assert WriteKey.objects.filter(source=source, revoked_at__isnull=True).count() == 2
    old = WriteKey.objects.get(digest=first.digest)
    response = editor.post(KEYS, {"action": "revoke_selected", "_selected_action": [old.pk]})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert WriteKey.objects.get(digest=digest(second)).revoked_at is None


def test_a_read_token_is_shown_once(editor: Client) -> None:
    response = editor.post(f"{TOKENS}add/", {"name": "prometheus", "scope": "metrics"})
    assert response.status_code == 200
    [token] = KEY.findall(response.content.decode())
    assert ReadToken.objects.get().digest == digest(token)
    response = editor.post(
        TOKENS, {"action": "revoke_selected", "_selected_action": [ReadToken.objects.get().pk]}
    )
    assert ReadToken.objects.get().revoked_at is not None


def test_view_only_staff_can_neither_rotate_nor_revoke_nor_add(viewer: Client) -> None:
    source, _ = source_create(source_id=7, name="blog")
    key = WriteKey.objects.get(source=source)
    page = viewer.get(SOURCES).content.decode()
    assert "blog" in page and "rotate_keys" not in page
    viewer.post(SOURCES, {"action": "rotate_keys", "_selected_action": [source.pk]})
    viewer.post(KEYS, {"action": "revoke_selected", "_selected_action": [key.pk]})
    assert WriteKey.objects.count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None
    assert viewer.get(f"{SOURCES}add/").status_code == 403
    assert viewer.post(f"{TOKENS}add/", {"name": "x", "scope": "stats"}).status_code == 403
    assert not ReadToken.objects.exists()


def test_write_keys_cannot_be_added_by_hand(editor: Client) -> None:
    assert editor.get(f"{KEYS}add/").status_code == 403
