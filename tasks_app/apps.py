from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = _("Tasks and recipients")

    def ready(self) -> None:
        from . import after_send, recurring, signals  # noqa: F401 (signal receivers)
