"""``manage.py tokens create|list|revoke``: read tokens of /stats* and /metrics."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from core import commands
from sources import selectors, services
from sources.management.commands.sources import _by_prefix
from sources.models import ReadToken

COLUMNS = ("PREFIX", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(commands.Command):
    help = commands.describe(
        """Read tokens: with security.read_auth = "token", GET /stats* needs a token of
        scope stats and GET /metrics one of scope metrics, sent as
        'Authorization: Bearer <token>' (Prometheus: authorization.credentials). A
        token is shown once, when it is made.""",
        "manage.py tokens create prometheus --scope metrics",
        "manage.py tokens list",
        "manage.py tokens revoke tlr_AbCdEfGh",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("create", "list", "revoke"))
        about = "Make a read token (printed once)."
        create = self.subcommand(sub, "create", help=about, description=commands.describe(about))
        create.add_argument("name", help="Who uses it, e.g. prometheus.")
        create.add_argument(
            "--scope", required=True, choices=ReadToken.Scope.values, help="What it may read."
        )
        about = "List read tokens: prefix, name, scope, created, last used, revoked."
        ls = self.subcommand(sub, "list", help=about, description=commands.describe(about))
        about = (
            "Revoke read tokens, each named by its first characters (up to 12) or the whole token."
        )
        revoke = self.subcommand(sub, "revoke", help=about, description=commands.describe(about))
        revoke.add_argument("prefixes", nargs="+", metavar="PREFIX", help="Token prefixes.")
        revoke.add_argument("--dry-run", action="store_true", help="Say what would be revoked.")
        revoke.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        for p in (create, ls, revoke):
            commands.verbosity_option(p, "0 quiet, 1 summary (default).")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "create":
            _, secret = services.read_token_create(name=opts["name"], scope=opts["scope"])
            self.stdout.write(f"read token {opts['name']} ({opts['scope']}), shown once:")
            self.stdout.write(secret.value)
        elif opts["action"] == "list":
            tokens = selectors.read_token_list()
            rows = [
                (
                    t.prefix,
                    t.name,
                    t.scope,
                    _when(t.created_at),
                    _when(t.last_used_at),
                    _when(t.revoked_at),
                )
                for t in tokens
            ]
            if rows:
                self.stdout.write(commands.table([COLUMNS, *rows]))
            self.stdout.write(commands.plural(len(tokens), "read token"))
        else:
            self._revoke(opts)

    def _revoke(self, opts: dict[str, Any]) -> None:
        tokens = selectors.read_token_list()
        chosen: list[ReadToken] = []
        for prefix in opts["prefixes"]:
            chosen.append(_by_prefix(tokens, prefix, "read token"))
        live = [t for t in chosen if t.revoked_at is None]
        if opts["dry_run"]:
            for t in live:
                self.stdout.write(f"Would revoke {t}.")
            self.stdout.write("Dry run: nothing was changed.")
            return
        if live:
            commands.confirm(
                f"Revoke {commands.plural(len(live), 'read token')}?", noinput=opts["noinput"]
            )
        count = services.credentials_revoke(credentials=live)
        self.stdout.write(f"revoked {commands.plural(count, 'read token')}")
