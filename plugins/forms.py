"""The admin's plugin forms: the parameters field is drawn from the plugin's
``Params`` JSON schema (django-jsonform) and validated by that same pydantic
model, so the admin refuses exactly what config.toml would, with the same
messages."""

from __future__ import annotations

from typing import Any

from django import forms
from django_jsonform.constants import JOIN_SYMBOL
from django_jsonform.widgets import JSONFormWidget
from pydantic import ValidationError

from plugins.base import Plugin
from plugins.catalog import params_summary, row_problem
from plugins.models import PluginConfig
from plugins.params import params_form_schema, params_messages, params_secret_keys
from plugins.registry import Kind, Registry

__all__ = ["PluginConfigForm", "PluginToggleForm", "params_field"]


def params_field(cls: type[Plugin] | None) -> forms.JSONField:
    """A JSON field drawn from the plugin's schema (a plain JSON text box when the
    plugin is not installed in this process)."""
    if cls is None:
        return forms.JSONField(required=False, help_text="The plugin is not installed here.")
    schema = params_form_schema(cls.Params)
    for key in params_secret_keys(cls.Params):
        field = schema["properties"].get(key, {})
        hint = field.get("help_text", "")
        field["help_text"] = f"{hint} Never shown; leave empty to keep the one stored.".strip()
    doc = (cls.__doc__ or "").strip()
    return forms.JSONField(
        required=False,
        widget=JSONFormWidget(schema=schema),
        help_text=doc.split("\n\n")[0].replace("``", "") if doc else "",
    )


def _kind(value: str) -> Kind:
    return "validator" if value == "validator" else "processor"


class PluginConfigForm(forms.ModelForm):
    """Add/change form; ``registry`` is set on the class by the admin."""

    registry: Registry
    secrets_changed: list[str] = []  # set per form by clean

    class Meta:
        model = PluginConfig
        fields = ("kind", "name", "enabled", "position", "params")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Secrets never reach the browser: the form shows them empty, and an
        # empty one keeps the stored value (see clean).
        stored = self.initial.get("params")
        self.params_before = stored  # for the history, before the secrets are hidden
        if self.instance.pk and isinstance(stored, dict):
            secrets = self._secret_keys()
            self.initial["params"] = {k: ("" if k in secrets else v) for k, v in stored.items()}

    def _secret_keys(self) -> frozenset[str]:
        if not self.instance.pk:
            return frozenset()
        cls = self.registry.get(_kind(self.instance.kind), self.instance.name)
        return params_secret_keys(cls.Params if cls is not None else None)

    def _with_stored_secrets(self, params: Any) -> Any:
        """``params`` with each secret left empty taken from the stored row; notes
        which secrets were given a new value (``secrets_changed``, for the history)."""
        stored = self.instance.params if self.instance.pk else {}
        if not isinstance(params, dict) or not isinstance(stored, dict):
            return params
        secrets = self._secret_keys()
        self.secrets_changed = sorted(
            k for k in secrets if params.get(k) and params.get(k) != stored.get(k)
        )
        kept = {k: stored[k] for k in secrets if not params.get(k) and stored.get(k)}
        return {**params, **kept}

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind = data.get("kind") or (self.instance.kind if self.instance.pk else None)
        name = data.get("name") or (self.instance.name if self.instance.pk else None)
        if not kind or not name:
            return data
        cls = self.registry.get(_kind(kind), name)
        if cls is None:
            known = ", ".join(self.registry.names(_kind(kind))) or "none"
            self.add_error(
                None,
                f"{kind} plugin {name!r} is not installed in this process, so its parameters "
                f"cannot be checked (installed: {known})",
            )
            return data
        params = data.get("params")
        if params is None:
            params = {}
        params = self._with_stored_secrets(params)
        try:
            validated = cls.Params.model_validate(params)
        except ValidationError as exc:
            widget = self.fields["params"].widget
            if isinstance(widget, JSONFormWidget):
                widget.add_error(
                    {
                        JOIN_SYMBOL.join(str(p) for p in loc): [msg]
                        for loc, msg in params_messages(exc)
                    }
                )
            self.add_error("params", params_summary(exc))
            return data
        data["params"] = validated.model_dump(mode="json")
        return data


class PluginToggleForm(forms.ModelForm):
    """The changelist's row form (enabled, position): enabling a plugin whose
    stored parameters do not validate is refused with the reason."""

    registry: Registry

    class Meta:
        model = PluginConfig
        fields = ("enabled", "position")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("enabled") and not self.instance.enabled:
            problem = row_problem(self.instance, self.registry).removeprefix(
                "set parameters before enabling: "
            )
            if problem:
                self.add_error("enabled", f"cannot enable {self.instance.name}: {problem}")
        return data
