from django.core.management.base import BaseCommand, CommandError

from tasks_app.services import create_api_key


class Command(BaseCommand):
    help = "Create an API client if needed and print a new key for it (alone on the last line)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("client_name")
        parser.add_argument(
            "--scopes", default="send,manage", help="comma-separated: send, manage (default: both)"
        )

    def handle(self, *args, client_name: str, scopes: str, **options) -> None:
        try:
            key, raw = create_api_key(
                client_name=client_name, scopes=[s.strip() for s in scopes.split(",") if s.strip()]
            )
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(
            f"API key for client '{key.client.name}' "
            f"(scopes: {', '.join(key.client.scopes)}), shown once:"
        )
        self.stdout.write(raw)
