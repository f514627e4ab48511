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
from django.core.exceptions import PermissionDenied
from django.db.models import Max, QuerySet
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html

from plugins.catalog import plugin_catalog, row_problem
from plugins.forms import PluginConfigForm, PluginToggleForm, params_field, plugin_summary
from plugins.models import PluginConfig
from plugins.params import params_redacted, params_secret_keys
from plugins.registry import Kind, Registry, get_registry, kind_of
from plugins.sync import POSITION_STEP

_kind = kind_of


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plugin_requested(request: HttpRequest, registry: Registry) -> tuple[Kind, str] | None:
    """The installed plugin ``?kind=…&name=…`` names (None: none, or not one the
    registry knows)."""
    kind, name = request.GET.get("kind", ""), request.GET.get("name", "")
    for known in registry.plugins:
        if known == kind and registry.get(known, name) is not None:
            return known, name
    return None


def _secret_keys(obj: PluginConfig) -> frozenset[str]:
    cls = get_registry().get(_kind(obj.kind), obj.name)
    return params_secret_keys(cls.Params if cls is not None else None)


def change_text(
    form: Form, *, fields: tuple[str, ...], secrets: frozenset[str] = frozenset()
) -> str:
    """'enabled: False -> True; params: {...} -> {...}' for the history (secrets
    masked: only that one changed is said). The parameters are compared as stored,
    not as the editor showed them."""
    parts = []
    for name in fields:
        if name == "params":
            before = getattr(form, "params_before", form.initial.get(name))
            after = form.cleaned_data.get(name)
            changed = getattr(form, "secrets_changed", [])
            before, after = params_redacted(before, secrets), params_redacted(after, secrets)
            if before != after or changed:
                note = f" ({', '.join(changed)} changed)" if changed else ""
                parts.append(f"params: {_short(before)} -> {_short(after)}{note}")
        elif name in form.changed_data:
            parts.append(f"{name}: {form.initial.get(name)} -> {form.cleaned_data.get(name)}")
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
    ordering = ("-kind", "position", "name")  # validators, transformers, processors; chain order
    actions = ("enable_selected", "disable_selected")
    list_per_page = 200

    # --- columns -----------------------------------------------------------
    @admin.display(description="parameters")
    def parameters(self, obj: PluginConfig) -> str:
        return _short(params_redacted(obj.params, _secret_keys(obj)))

    @admin.display(description="params")
    def params_masked(self, obj: PluginConfig) -> str:
        return json.dumps(params_redacted(obj.params, _secret_keys(obj)), indent=2)

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
    _about = ("package", "status", "source", "updated_at", "updated_by")

    def get_readonly_fields(
        self, request: HttpRequest, obj: PluginConfig | None = None
    ) -> tuple[str, ...]:
        # kind and name are the registry's: chosen from its list, never typed in
        return ("kind", "name", *self._about)

    def get_fields(self, request: HttpRequest, obj: PluginConfig | None = None) -> Any:
        # Who may only look sees the parameters with their secrets masked.
        if obj is None:
            editable = self.has_add_permission(request)
        else:
            editable = self.has_change_permission(request, obj)
        params = "params" if editable else "params_masked"
        return ["kind", "name", "enabled", "position", params, *self._about]

    def get_form(
        self,
        request: HttpRequest,
        obj: PluginConfig | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm]:
        registry = get_registry()
        attrs: dict[str, Any] = {"registry": registry}
        if obj is None:
            attrs["new_plugin"] = new = plugin_requested(request, registry)
            cls = registry.get(*new) if new is not None else None
        else:
            cls = registry.get(_kind(obj.kind), obj.name)
        attrs["params"] = params_field(cls)
        kwargs["form"] = type("PluginConfigForm", (PluginConfigForm,), attrs)
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """A new row goes last in its chain."""
        new = plugin_requested(request, get_registry())
        if new is None:
            return {}
        rows = PluginConfig.objects.filter(kind=new[0])
        return {"position": (rows.aggregate(last=Max("position"))["last"] or 0) + POSITION_STEP}

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The "Add plugin" page: first the installed plugins with no row to choose,
        then the chosen one's form, its parameters at their defaults."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        registry = get_registry()
        new = plugin_requested(request, registry)
        if new is None:
            return self._choose_view(request, registry)
        row = PluginConfig.objects.filter(kind=new[0], name=new[1]).first()
        if row is not None:
            self.message_user(request, f"{row.name} is listed already: change it here.")
            return HttpResponseRedirect(reverse("admin:plugins_pluginconfig_change", args=[row.pk]))
        return super().add_view(request, form_url, extra_context)

    def _choose_view(self, request: HttpRequest, registry: Registry) -> HttpResponse:
        catalog = plugin_catalog(registry=registry, rows=list(PluginConfig.objects.all()))
        choices = [
            (entry, plugin_summary(registry.get(entry.kind, entry.name)))
            for entry in catalog
            if not entry.configured and not entry.error
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add plugin",
            "subtitle": None,
            "choices": choices,
        }
        return TemplateResponse(request, "admin/plugins/pluginconfig/choose_plugin.html", context)

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
