"""One module a model family: each subclasses ``models.registry.Family`` and registers itself
with ``@register``. Every module here is imported when the registry is first asked."""
