"""``manage.py sources create|list|rotate|revoke``: sources and their write keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import IntegrityError

from core import commands
from sources import selectors, services
from sources.keys import PREFIX_LENGTH, digest
from sources.models import Source, WriteKey

U64_MAX = 2**64 - 1
COLUMNS = ("ID", "NAME", "ENABLED", "KEYS", "ORIGINS", "RATE LIMIT", "LAST USED")


def source_id_arg(text: str) -> int:
    """An argparse type: a source id, 0 to 2^64 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= U64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (0 to {U64_MAX})")
    return value


def rate_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _source(source_id: int) -> Source:
    try:
        return Source.objects.get(source_id=source_id)
    except Source.DoesNotExist:
        raise CommandError(
            f"no source {source_id} (see `manage.py sources list`)", returncode=commands.USAGE_ERROR
        ) from None


def _by_prefix(items: list[Any], given: str, what: str) -> Any:
    """The one key or token named by ``given``: up to its 12 first characters
    (the prefix lists show), or the whole secret; a usage error for none or several."""
    given_digest = digest(given)

    def named(item: Any) -> bool:
        if len(given) <= PREFIX_LENGTH:
            return str(item.prefix).startswith(given)
        return bool(item.digest == given_digest)

    found = [i for i in items if named(i)]
    if not found:
        raise CommandError(f"no {what} {given}", returncode=commands.USAGE_ERROR)
    if len(found) > 1:
        raise CommandError(
            f"{given} names {len(found)} {what}s: give more of its characters",
            returncode=commands.USAGE_ERROR,
        )
    return found[0]


def _rate(row: selectors.SourceRow) -> str:
    if row.rate_limit is None:
        return "-"
    return f"{row.rate_limit:g}/s burst {row.rate_burst or max(1, int(row.rate_limit))}"


def _row(row: selectors.SourceRow) -> tuple[str, ...]:
    used = row.last_used_at.strftime("%Y-%m-%d %H:%M") if row.last_used_at else "never"
    return (
        str(row.id),
        row.name,
        "yes" if row.enabled else "no",
        str(row.live_keys),
        ", ".join(row.origins) or "-",
        _rate(row),
        used,
    )


class Command(commands.Command):
    help = commands.describe(
        """Sources (who sends events) and their write keys. A key is shown once, when it
        is made; only its digest is stored. Every running process follows a change
        within plugins.reload_interval seconds.""",
        "manage.py sources create 1 --name shop --origin https://shop.example.com --rate 100",
        "manage.py sources list",
        "manage.py sources rotate 1",
        "manage.py sources revoke tlw_AbCdEfGh --dry-run",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("create", "list", "rotate", "revoke"))
        about = "Create a source and its first write key (printed once)."
        create = self.subcommand(sub, "create", help=about, description=commands.describe(about))
        create.add_argument("source_id", type=source_id_arg, help="The events' sourceId.")
        create.add_argument("--name", required=True, help="A name shown in lists and /stats.")
        create.add_argument(
            "--origin",
            action="append",
            default=[],
            help="A browser origin allowed to send (scheme://host[:port]; '*': any); repeatable.",
        )
        create.add_argument("--rate", type=rate_arg, help="Rate limit in events per second.")
        create.add_argument(
            "--burst", type=commands.count_arg, help="Events at once above the rate (default: 1 s)."
        )
        create.add_argument("--disabled", action="store_true", help="Create it disabled.")
        about = "List sources: id, name, enabled, live keys, origins, rate limit, last use."
        ls = self.subcommand(sub, "list", help=about, description=commands.describe(about))
        ls.add_argument("--json", action="store_true", help="Print a JSON array instead.")
        about = """Make a new write key for a source (printed once). Its other keys stay
        live, so senders can move over; revoke the old key afterwards, or at once with
        --revoke-others."""
        rotate = self.subcommand(sub, "rotate", help=about, description=commands.describe(about))
        rotate.add_argument("source_id", type=source_id_arg, help="The source's id.")
        rotate.add_argument(
            "--revoke-others", action="store_true", help="Revoke the source's other keys now."
        )
        about = """Revoke write keys, each named by its first characters (up to the 12 the
        admin shows) or the whole key."""
        revoke = self.subcommand(sub, "revoke", help=about, description=commands.describe(about))
        revoke.add_argument("prefixes", nargs="*", metavar="PREFIX", help="Key prefixes.")
        revoke.add_argument(
            "--source", type=source_id_arg, help="Revoke every live key of this source."
        )
        for p in (rotate, revoke):
            p.add_argument("--dry-run", action="store_true", help="Say what would be revoked.")
            p.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        for p in (create, ls, rotate, revoke):
            commands.verbosity_option(p, "0 quiet, 1 summary (default), 2 every key.")

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        if action == "create":
            self._create(opts)
        elif action == "list":
            self._list(as_json=opts["json"])
        elif action == "rotate":
            self._rotate(opts)
        else:
            self._revoke(opts)

    def _create(self, opts: dict[str, Any]) -> None:
        try:
            source, secret = services.source_create(
                source_id=opts["source_id"],
                name=opts["name"],
                enabled=not opts["disabled"],
                origins=services.origins_clean(opts["origin"]),
                rate_limit=opts["rate"],
                rate_burst=opts["burst"] or None,
            )
        except ValueError as exc:
            raise CommandError(f"--origin: {exc}", returncode=commands.USAGE_ERROR) from None
        except IntegrityError:
            raise CommandError(
                f"source {opts['source_id']} exists already", returncode=commands.USAGE_ERROR
            ) from None
        self.stdout.write(f"created source {source}")
        self.stdout.write(f"write key (shown once, keep it now): {secret.value}")

    def _list(self, *, as_json: bool) -> None:
        rows = selectors.source_list()
        if as_json:
            out = [
                {**r.__dict__, "last_used_at": r.last_used_at and r.last_used_at.isoformat()}
                for r in rows
            ]
            self.stdout.write(json.dumps(out, indent=2))
            return
        if rows:
            self.stdout.write(
                commands.table([COLUMNS, *(_row(r) for r in rows)], right=frozenset({3}))
            )
        keys = sum(r.live_keys for r in rows)
        self.stdout.write(
            f"{commands.plural(len(rows), 'source')}, {commands.plural(keys, 'live key')}"
        )

    def _rotate(self, opts: dict[str, Any]) -> None:
        source = _source(opts["source_id"])
        others = selectors.write_key_list(source_id=source.source_id, live_only=True)
        if opts["dry_run"]:
            self.stdout.write(f"Would make a new write key for source {source}.")
            if opts["revoke_others"]:
                self._would_revoke(others)
            self.stdout.write("Dry run: nothing was changed.")
            return
        if opts["revoke_others"] and others:
            others_text = commands.plural(len(others), "other key")
            commands.confirm(
                f"Make a new key for {source} and revoke {others_text}?",
                noinput=opts["noinput"],
            )
        secret = services.write_key_create(source=source)
        self.stdout.write(f"new write key for source {source} (shown once): {secret.value}")
        if opts["revoke_others"]:
            count = services.credentials_revoke(credentials=others)
            self.stdout.write(f"revoked {commands.plural(count, 'other key')}")
        elif others:
            self.stdout.write(
                f"{commands.plural(len(others), 'older key')} still live: revoke once senders moved"
            )

    def _would_revoke(self, keys: list[WriteKey]) -> None:
        for key in keys:
            self.stdout.write(f"Would revoke {key.prefix}… of source {key.source}.")

    def _revoke_selection(self, opts: dict[str, Any]) -> list[WriteKey]:
        if not opts["prefixes"] and opts["source"] is None:
            raise CommandError(
                "name the keys: PREFIX ... or --source ID", returncode=commands.USAGE_ERROR
            )
        keys: list[WriteKey] = []
        if opts["source"] is not None:
            source = _source(opts["source"])
            keys += selectors.write_key_list(source_id=source.source_id, live_only=True)
        every = selectors.write_key_list()
        for prefix in opts["prefixes"]:
            key = _by_prefix(every, prefix, "write key")
            if key.pk not in {k.pk for k in keys}:
                keys.append(key)
        return keys

    def _revoke(self, opts: dict[str, Any]) -> None:
        keys = [k for k in self._revoke_selection(opts) if k.revoked_at is None]
        if not keys:
            self.stdout.write("nothing to revoke: those keys are revoked already")
            return
        if opts["dry_run"]:
            self._would_revoke(keys)
            self.stdout.write("Dry run: nothing was changed.")
            return
        commands.confirm(
            f"Revoke {commands.plural(len(keys), 'write key')}?", noinput=opts["noinput"]
        )
        count = services.credentials_revoke(credentials=keys)
        if opts["verbosity"] >= 2:
            self._would_revoke(keys)
        self.stdout.write(
            f"revoked {commands.plural(count, 'write key')}; refused everywhere within seconds"
        )
