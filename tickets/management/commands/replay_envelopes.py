from django.core.management.base import BaseCommand

from tickets import inbound
from tickets.models import EnvelopeStatus


class Command(BaseCommand):
    help = "Process again the inbound envelopes that are pending or failed (or the given ids)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Envelope ids (default: every unfinished one)")
        parser.add_argument("--channel", help="Only this channel")
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, ids: list[int], channel: str | None, limit: int, **options) -> None:
        done = inbound.replay_envelopes(channel=channel, envelope_ids=ids or None, limit=limit)
        failed = [envelope for envelope in done if envelope.status == EnvelopeStatus.FAILED]
        for envelope in failed:
            self.stderr.write(f"envelope {envelope.pk} ({envelope}) failed again:\n{envelope.error}")
        self.stdout.write(
            f"replayed {len(done)} envelopes: {len(done) - len(failed)} ok, {len(failed)} failed"
        )
        if failed:
            raise SystemExit(1)
