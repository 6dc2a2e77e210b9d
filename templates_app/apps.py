from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TemplatesAppConfig(AppConfig):
    name = "templates_app"
    verbose_name = _("Templates")

    def ready(self) -> None:
        # Registers the OpenAPI description of our Bearer API keys with drf-spectacular.
        from msgcenter import schema  # noqa: F401
