"""The admin of sources, write keys and read tokens.

A new key or token is shown once, on the page that answers its creation (never
through the messages framework, whose cookie or session would keep it); only
its digest is stored. Staff with the change permission rotate and revoke; staff
with only the view permission see the lists read-only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core.timespans import parse_duration
from sources import services
from sources.keys import NewSecret
from sources.models import ReadToken, Source, WriteKey

SHOWN_TEMPLATE = "admin/sources/secret_shown.html"


def _shown(
    request: HttpRequest, title: str, secrets: list[tuple[str, NewSecret]], back: str
) -> TemplateResponse:
    """The page that shows new secrets, once."""
    context = {
        **admin.site.each_context(request),
        "title": title,
        "secrets": [(label, s.value) for label, s in secrets],
        "back": back,
    }
    response = TemplateResponse(request, SHOWN_TEMPLATE, context)
    response["Cache-Control"] = "no-store"
    return response


class RetentionField(forms.DurationField):
    """A duration as the commands write it (30d, 12h, 1w), shown back that way."""

    def to_python(self, value: Any) -> timedelta | None:
        parsed: timedelta | None
        if isinstance(value, str) and value.strip() and value.strip()[-1:].isalpha():
            try:
                parsed = parse_duration(value)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        else:
            parsed = super().to_python(value)
        if parsed is not None and parsed <= timedelta(0):
            raise forms.ValidationError("must be a positive duration, e.g. 30d")
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, timedelta):
            seconds = int(value.total_seconds())
            for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
                if seconds % size == 0:
                    return f"{seconds // size}{unit}"
        return super().prepare_value(value)


class SourceForm(forms.ModelForm):
    origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Browser origins that may send events, one per line, e.g. "
        'https://shop.example.com; "*" allows every origin.',
    )

    class Meta:
        model = Source
        fields = ("source_id", "name", "enabled", "rate_limit", "rate_burst", "archive_retention")
        field_classes = {"archive_retention": RetentionField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["origins"].initial = "\n".join(self.instance.allowed_origins or [])

    def clean_origins(self) -> list[str]:
        try:
            return services.origins_clean(self.cleaned_data["origins"].split())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def save(self, commit: bool = True) -> Source:
        self.instance.allowed_origins = self.cleaned_data["origins"]
        return super().save(commit)  # type: ignore[no-any-return]


class WriteKeyInline(admin.TabularInline):
    model = WriteKey
    fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are made by "Create a new write key", shown once


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ("source_id", "name", "enabled", "live_keys", "origins", "rate", "updated_at")
    list_display_links = ("source_id", "name")
    list_filter = ("enabled",)
    search_fields = ("name", "source_id")
    inlines = (WriteKeyInline,)
    actions = ("rotate_keys",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        live = Q(keys__revoked_at__isnull=True)
        return super().get_queryset(request).annotate(n_live=Count("keys", filter=live))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("source_id",) if obj is not None else ()

    @admin.display(description="live keys", ordering="n_live")
    def live_keys(self, obj: Source) -> int:
        return int(getattr(obj, "n_live", 0))

    @admin.display(description="origins")
    def origins(self, obj: Source) -> str:
        return ", ".join(obj.allowed_origins or []) or "—"

    @admin.display(description="rate limit")
    def rate(self, obj: Source) -> str:
        if obj.rate_limit is None:
            return "—"
        burst = obj.rate_burst or max(1, int(obj.rate_limit))
        return f"{obj.rate_limit:g}/s, burst {burst}"

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            request.new_write_key = services.write_key_create(source=obj)  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: Source, post_url_continue: Any = None) -> Any:
        secret = getattr(request, "new_write_key", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return _shown(
            request,
            f"Source {obj} added: its write key",
            [(str(obj), secret)],
            back="../",
        )

    @admin.action(
        description="Create a new write key (the others stay live)", permissions=["change"]
    )
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[Source]) -> HttpResponse:
        made = [(str(source), services.write_key_create(source=source)) for source in queryset]
        return _shown(request, "New write keys", made, back="")


@admin.register(WriteKey)
class WriteKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "source", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "source")
    search_fields = ("prefix", "source__name")
    fields = ("prefix", "source", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_selected",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made from the source page, shown once

    @admin.action(description="Revoke selected write keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[WriteKey]) -> None:
        count = services.credentials_revoke(credentials=list(queryset))
        self.message_user(request, f"Revoked {count} write key(s); refused within seconds.")


@admin.register(ReadToken)
class ReadTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix")
    actions = ("revoke_selected",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "scope")
        return ("name", "scope", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("scope", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ReadToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, secret = services.read_token_create(name=obj.name, scope=obj.scope)
        obj.pk, obj.prefix, obj.digest = token.pk, token.prefix, token.digest
        request.new_read_token = secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ReadToken, post_url_continue: Any = None
    ) -> Any:
        secret = getattr(request, "new_read_token", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return _shown(request, f"Read token {obj.name} ({obj.scope})", [(obj.name, secret)], "../")

    @admin.action(description="Revoke selected read tokens", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ReadToken]) -> None:
        count = services.credentials_revoke(credentials=list(queryset))
        self.message_user(request, f"Revoked {count} read token(s); refused within seconds.")
