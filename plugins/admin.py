"""The plugins page: every discovered plugin (built-in or from an installed
package, enabled or not) with enable/disable, order and a parameters form drawn
from its ``Params`` schema; plugins that failed to import, with their error.

Staff with the change permission edit; staff with only the view permission see
the same page read-only. Every change is in the admin's history (who, when,
what); running processes pick it up within ``plugins.reload_interval``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils.formats import date_format
from django.utils.html import format_html

from plugins.catalog import plugin_catalog, row_problem
from plugins.forms import PluginConfigForm, PluginToggleForm, params_field
from plugins.models import PluginConfig
from plugins.params import params_redacted, params_secret_keys
from plugins.registry import Kind, get_registry


def _kind(value: str) -> Kind:
    return "validator" if value == "validator" else "processor"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _secret_keys(obj: PluginConfig) -> frozenset[str]:
    cls = get_registry().get(_kind(obj.kind), obj.name)
    return params_secret_keys(cls.Params if cls is not None else None)


def change_text(
    form: Form, *, fields: tuple[str, ...], secrets: frozenset[str] = frozenset()
) -> str:
    """'enabled: False -> True; params: {...} -> {...}' for the history (secrets
    masked: only that one changed is said)."""
    parts = []
    for name in fields:
        if name not in form.changed_data:
            continue
        before = form.initial.get(name)
        after = form.cleaned_data.get(name)
        if name == "params":
            before = getattr(form, "params_before", before)
            before = json.loads(before) if isinstance(before, str) else before
            changed = getattr(form, "secrets_changed", [])
            before, after = params_redacted(before, secrets), params_redacted(after, secrets)
            note = f" ({', '.join(changed)} changed)" if changed else ""
            parts.append(f"params: {_short(before)} -> {_short(after)}{note}")
        else:
            parts.append(f"{name}: {before} -> {after}")
    return "; ".join(parts)


@admin.register(PluginConfig)
class PluginConfigAdmin(admin.ModelAdmin):
    change_list_template = "admin/plugins/pluginconfig/change_list.html"
    list_display = (
        "name",
        "kind",
        "enabled",
        "position",
        "parameters",
        "package",
        "status",
        "last_change",
    )
    list_display_links = ("name",)
    list_select_related = ("updated_by",)
    list_editable = ("enabled", "position")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    ordering = ("-kind", "position", "name")  # validators, then processors; chain order
    actions = ("enable_selected", "disable_selected")
    list_per_page = 200

    # --- columns -----------------------------------------------------------
    @admin.display(description="parameters")
    def parameters(self, obj: PluginConfig) -> str:
        return _short(params_redacted(obj.params, _secret_keys(obj)))

    @admin.display(description="package")
    def package(self, obj: PluginConfig) -> str:
        pkg, version = get_registry().packages.get((_kind(obj.kind), obj.name), ("", ""))
        return f"{pkg} {version}".strip() or "-"

    @admin.display(description="last change", ordering="updated_at")
    def last_change(self, obj: PluginConfig) -> str:
        """When, then by what (``admin (ops)``, ``config.toml``): one column
        instead of three, so the list fits its window."""
        who = f" ({obj.updated_by})" if obj.updated_by_id else ""
        day, time = date_format(obj.updated_at, "DATETIME_FORMAT").split(" ", 1)
        return format_html(
            '<span class="when">{}</span> <span class="when">{}</span><br>{}{}',
            day,
            time,
            obj.source,
            who,
        )

    @admin.display(description="status")
    def status(self, obj: PluginConfig) -> str:
        problem = row_problem(obj, get_registry())
        if not problem:
            return "OK"
        colour = "#ba2121" if obj.enabled or "import" in problem else "#666"
        return format_html('<span style="color:{}">{}</span>', colour, problem)

    # --- forms ---------------------------------------------------------------
    def get_readonly_fields(
        self, request: HttpRequest, obj: PluginConfig | None = None
    ) -> tuple[str, ...]:
        meta = ("package", "status", "source", "updated_at", "updated_by")
        return ("kind", "name", *meta) if obj is not None else meta

    def get_fields(self, request: HttpRequest, obj: PluginConfig | None = None) -> Any:
        return ["kind", "name", "enabled", "position", "params", *self.get_readonly_fields(request)]

    def _plugin_for(self, request: HttpRequest, obj: PluginConfig | None) -> tuple[str, str]:
        if obj is not None:
            return obj.kind, obj.name
        return request.GET.get("kind", ""), request.GET.get("name", "")

    def get_form(
        self,
        request: HttpRequest,
        obj: PluginConfig | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm]:
        registry = get_registry()
        kind, name = self._plugin_for(request, obj)
        if request.method == "POST" and obj is None:
            kind, name = request.POST.get("kind", kind), request.POST.get("name", name)
        cls = registry.get(_kind(kind), name) if name else None
        attrs = {"registry": registry, "params": params_field(cls)}
        base = type("PluginConfigForm", (PluginConfigForm,), attrs)
        kwargs["form"] = base
        return super().get_form(request, obj, change, **kwargs)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[ModelForm]:
        kwargs["form"] = type("PluginToggleForm", (PluginToggleForm,), {"registry": get_registry()})
        return super().get_changelist_form(request, **kwargs)

    # --- saving and history --------------------------------------------------
    def save_model(self, request: HttpRequest, obj: PluginConfig, form: Any, change: bool) -> None:
        obj.updated_by = request.user if request.user.is_authenticated else None  # type: ignore[assignment]
        obj.source = PluginConfig.Source.ADMIN
        super().save_model(request, obj, form, change)

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        if add:
            data = form.cleaned_data
            return (
                f"added: enabled {data.get('enabled')}, position {data.get('position')}, "
                f"params {_short(params_redacted(data.get('params'), _secret_keys(form.instance)))}"
            )
        secrets = _secret_keys(form.instance)
        return (
            change_text(form, fields=("enabled", "position", "params"), secrets=secrets)
            or "saved unchanged"
        )

    def _toggle(self, request: HttpRequest, queryset: QuerySet[PluginConfig], on: bool) -> None:
        registry = get_registry()
        done, refused = [], []
        for obj in queryset:
            if obj.enabled == on:
                continue
            problem = row_problem(obj, registry) if on else ""
            if problem:
                refused.append(f"{obj.name} ({problem})")
                continue
            obj.enabled = on
            obj.updated_by = request.user  # type: ignore[assignment]
            obj.source = PluginConfig.Source.ADMIN
            obj.save()
            self.log_change(request, obj, f"enabled: {not on} -> {on}")
            done.append(obj.name)
        verb = "Enabled" if on else "Disabled"
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not enabled: {'; '.join(refused)}.", messages.ERROR)

    @admin.action(description="Enable selected plugins", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[PluginConfig]) -> None:
        self._toggle(request, queryset, True)

    @admin.action(description="Disable selected plugins", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[PluginConfig]) -> None:
        self._toggle(request, queryset, False)

    # --- the page ------------------------------------------------------------
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        registry = get_registry()
        catalog = plugin_catalog(registry=registry, rows=list(PluginConfig.objects.all()))
        context = {
            **(extra_context or {}),
            "plugin_failures": registry.failures,
            "plugin_unlisted": [e for e in catalog if not e.configured and not e.error],
        }
        return super().changelist_view(request, extra_context=context)
