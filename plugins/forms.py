"""The admin's plugin forms: the parameters field is drawn from the plugin's
``Params`` JSON schema (django-jsonform) and validated by that same pydantic
model, so the admin refuses exactly what config.toml would, with the same
messages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import escape
from django_jsonform.constants import JOIN_SYMBOL
from django_jsonform.widgets import JSONFormWidget
from pydantic import ValidationError

from plugins.base import Plugin
from plugins.catalog import row_problem
from plugins.editor import (
    EditorDataError,
    params_editor_schema,
    params_from_editor,
    params_to_editor,
)
from plugins.models import PluginConfig
from plugins.params import (
    Loc,
    params_initial,
    params_messages,
    params_problems_text,
    params_secret_keys,
)
from plugins.registry import Kind, Registry, kind_of

__all__ = ["PluginConfigForm", "PluginToggleForm", "params_field", "plugin_summary"]


def params_field(cls: type[Plugin] | None) -> forms.JSONField:
    """A JSON field drawn from the plugin's schema (a plain JSON text box when the
    plugin is not installed in this process)."""
    if cls is None:
        return forms.JSONField(required=False, help_text="The plugin is not installed here.")
    schema = params_editor_schema(cls.Params)
    for key in params_secret_keys(cls.Params):
        field = schema["properties"].get(key, {})
        hint = field.get("help_text", "")
        field["help_text"] = f"{hint} Never shown; leave empty to keep the one stored.".strip()
    # The admin shows a field's help text as HTML: a docstring's <batch id> is text.
    return forms.JSONField(
        required=False, widget=JSONFormWidget(schema=schema), help_text=escape(plugin_summary(cls))
    )


def plugin_summary(cls: type[Plugin] | None) -> str:
    """The first paragraph of a plugin's docstring, on one line."""
    doc = (cls.__doc__ or "").strip() if cls is not None else ""
    return " ".join(doc.split("\n\n")[0].replace("``", "").split())


_kind = kind_of


class PluginConfigForm(forms.ModelForm):
    """The form of one plugin's row. The admin sets ``registry`` on the class and,
    for a new row, ``new_plugin``: the kind and name of a plugin the registry
    knows (never typed in)."""

    registry: Registry
    new_plugin: tuple[Kind, str] | None = None
    secrets_changed: list[str] = []  # set per form by clean

    class Meta:
        model = PluginConfig
        fields = ("enabled", "position", "params")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk and self.new_plugin is not None:
            self.instance.kind, self.instance.name = self.new_plugin
        cls = self.registry.get(_kind(self.instance.kind), self.instance.name)
        self.plugin = cls
        if self.instance.pk:
            self.params_before = self.instance.params  # for the history and an untouched save
        else:
            self.params_before = params_initial(cls.Params) if cls is not None else {}
        if cls is not None and isinstance(self.params_before, dict):
            # Secrets never reach the browser: the form shows them empty, and an
            # empty one keeps the stored value (see clean).
            secrets = params_secret_keys(cls.Params)
            shown = {k: ("" if k in secrets else v) for k, v in self.params_before.items()}
            self.initial["params"] = params_to_editor(cls.Params, shown)

    def _with_stored_secrets(self, params: Any) -> Any:
        """``params`` with each secret left empty taken from the stored row; notes
        which secrets were given a new value (``secrets_changed``, for the history)."""
        stored = self.instance.params if self.instance.pk else {}
        if not isinstance(params, dict) or not isinstance(stored, dict) or self.plugin is None:
            return params
        secrets = params_secret_keys(self.plugin.Params)
        self.secrets_changed = sorted(
            k for k in secrets if params.get(k) and params.get(k) != stored.get(k)
        )
        kept = {k: stored[k] for k in secrets if not params.get(k) and stored.get(k)}
        return {**params, **kept}

    def _refuse(self, problems: list[tuple[Loc, str]]) -> None:
        """Each problem beside its field in the editor, and all of them above it."""
        widget = self.fields["params"].widget
        if isinstance(widget, JSONFormWidget):
            widget.add_error(
                {JOIN_SYMBOL.join(str(p) for p in loc): [msg] for loc, msg in problems}
            )
        self.add_error("params", params_problems_text(problems))

    def _submitted_params(self) -> Any:
        """The parameters the form was sent, as the plugin reads them. An empty
        field (the editor did not load: no JavaScript, an error) leaves the stored
        parameters as they are; it never stands for none."""
        raw = self.data.get(self.add_prefix("params"))
        if raw is None or not str(raw).strip() or self.plugin is None:
            return self.params_before
        params = params_from_editor(self.plugin.Params, self.cleaned_data.get("params"))
        return self._with_stored_secrets(params)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind, name = self.instance.kind, self.instance.name
        if not self.instance.pk and PluginConfig.objects.filter(kind=kind, name=name).exists():
            self.add_error(None, f"{kind} plugin {name} is listed already: change it from the list")
            return data
        cls = self.plugin
        if cls is None:
            known = ", ".join(self.registry.names(_kind(kind))) or "none"
            self.add_error(
                None,
                f"{kind} plugin {name!r} is not installed in this process, so its parameters "
                f"cannot be checked (installed: {known})",
            )
            return data
        if "params" not in data:
            return data  # not JSON at all: the field says so
        try:
            validated = cls.Params.model_validate(self._submitted_params())
        except EditorDataError as exc:
            self._refuse(exc.problems)
            return data
        except ValidationError as exc:
            self._refuse(params_messages(exc))
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
