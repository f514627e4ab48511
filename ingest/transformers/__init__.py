"""The built-in transformer plugins (entry-point group ``telemetron.transformers``):
:class:`CelTransformer`, :class:`PiiRedactor`, :class:`ClientContext` and
:class:`Sampler`. Each works on the wire form of an event (plain JSON data)."""
