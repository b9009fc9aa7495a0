from django.core.management.base import BaseCommand, CommandError

from api.exceptions import ApiError
from api.models import SCOPES
from api.services import create_api_key


class Command(BaseCommand):
    help = (
        "Create an API key for a client (created when missing) and print it once on stdout;"
        " only its digest is stored. Exit 1 on a bad client name or scope."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "client", help="The client's name (its ledger source), e.g. attendance."
        )
        parser.add_argument(
            "--scopes",
            help=f"Comma-separated, replacing the client's scopes: {', '.join(SCOPES)}.",
        )
        parser.add_argument(
            "--external-id-source",
            help="Whose ids the client sends as external_id (default: its own name;"
            " e.g. replaced-system for the ids the import recorded).",
        )

    def handle(self, *args, client, scopes, external_id_source, **options):
        scope_list = None if scopes is None else [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            new = create_api_key(client, scopes=scope_list, external_id_source=external_id_source)
        except ApiError as error:
            raise CommandError(str(error), returncode=1) from error
        api_client = new.api_key.client
        if options["verbosity"] >= 1:
            self.stderr.write(
                f"New key {new.api_key.prefix} for {api_client.name} (scopes:"
                f" {', '.join(api_client.scopes) or 'none'}; external ids of"
                f" {api_client.namespace!r}). It is shown once: store it now."
            )
        self.stdout.write(new.key)
