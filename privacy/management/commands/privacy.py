"""``manage.py privacy erase``, ``privacy audit`` and ``privacy purge``: a person's
events erased from the queue, the dead letters and the archive (audited), the
audit listed, and old audit rows deleted. Thin: the work is
:mod:`privacy.services` (and each store's own erasure)."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from core import commands
from core.commands import USAGE_ERROR, describe, plural, table
from core.config import get_config
from core.erasure import ErasureTarget
from core.timespans import format_duration
from privacy.selectors import audit_as_dict, audit_list
from privacy.services import Erased, audit_purge, privacy_erase
from sources.selectors import source_find

MANUAL = """\
A person's events, erased on request (GDPR Art. 17) from every store of raw events:
the batches waiting in the queue, the dead letters and the archive. Which paths of
an event's data hold a person's id is privacy.user_paths in config.toml (userId and
anonymousId by default). Aggregate statistics keep their counts: they hold no
personal data. Each erasure is audited (who, when, source, a keyed hash of the id,
how many per store): the admin's Privacy > Erasures, or `privacy audit`.

  manage.py privacy erase --source 7 --user u-123 --dry-run
  manage.py privacy erase --source shop --user u-123 --by "ticket 4711" --noinput
  manage.py privacy audit --source 7 --user u-123
  manage.py privacy purge --noinput               # the age privacy.audit_retention sets

Run `manage.py privacy SUBCOMMAND --help` for each subcommand's options.
"""


class Command(commands.Command):
    help = MANUAL
    epilog = "exit status: 0 done, 1 cancelled at the confirmation, 2 bad usage"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("erase", "audit", "purge"))
        self._erase_parser(sub)
        self._audit_parser(sub)
        self._purge_parser(sub)

    @staticmethod
    def _person_options(p: Any, *, required: bool) -> None:
        p.add_argument(
            "--source",
            required=required,
            metavar="SOURCE",
            help="The source: its id, or its name in the admin. An id no source is"
            ' registered under is taken only with ingest.auth = "off".',
        )
        p.add_argument(
            "--user",
            required=required,
            metavar="ID",
            help="The person's id, as the events carry it at privacy.user_paths.",
        )

    def _erase_parser(self, sub: Any) -> None:
        about = "Erase one person's events of one source from the queue, dead letters, archive."
        erase = self.subcommand(
            sub,
            "erase",
            help=about,
            description=describe(
                about
                + """ The queue's waiting batches are rewritten without them (same batch
                ids) or removed when left empty; dead letters likewise; archived events
                are deleted. Bounded transactions, a progress bar on a terminal. A batch
                being processed meanwhile is counted in flight: --wait waits for it, or
                run the command again once it is done (a run that finds nothing erases
                0). Asks first unless --noinput.""",
                "manage.py privacy erase --source 7 --user u-123 --dry-run",
                "manage.py privacy erase --source 7 --user u-123 --noinput --wait 60 --json",
            ),
        )
        self._person_options(erase, required=True)
        erase.add_argument(
            "--by",
            metavar="WHO",
            help="Who asks, for the audit (default: the OS user running the command).",
        )
        erase.add_argument(
            "--wait",
            type=commands.count_arg,
            default=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for batches holding the person's events that workers"
            " are processing, then erase them from where they landed (default 0: report them).",
        )
        erase.add_argument(
            "--dry-run", action="store_true", help="Count the events per store; change nothing."
        )
        erase.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        erase.add_argument("--json", action="store_true", help="The counts as one JSON object.")
        commands.verbosity_option(erase, "0 quiet, 1 the summary (default), 2 also per store.")

    def _audit_parser(self, sub: Any) -> None:
        about = "List the erasures done, newest first (of one person, if given)."
        audit = self.subcommand(
            sub,
            "audit",
            help=about,
            description=describe(
                about
                + """ The audit keeps a keyed hash of the id, not the id: give --source
                and --user to find a person's erasures.""",
                "manage.py privacy audit",
                "manage.py privacy audit --source 7 --user u-123",
            ),
        )
        self._person_options(audit, required=False)
        audit.add_argument(
            "--limit", type=commands.count_arg, default=50, help="At most this many (default 50)."
        )
        audit.add_argument("--json", action="store_true", help="One JSON object per line.")
        commands.verbosity_option(audit, "0 quiet, 1 the table (default).")

    def _purge_parser(self, sub: Any) -> None:
        about = "Delete audit rows of erasures done more than AGE ago."
        purge = self.subcommand(
            sub,
            "purge",
            help=about,
            description=describe(
                about + " AGE is --older-than, or else privacy.audit_retention.",
                "manage.py privacy purge --older-than 156w --dry-run",
                "manage.py privacy purge --noinput",
            ),
        )
        purge.add_argument(
            "--older-than",
            type=commands.duration_arg,
            metavar="AGE",
            help="Started more than AGE ago: 30d, 52w (default: privacy.audit_retention).",
        )
        purge.add_argument(
            "--dry-run", action="store_true", help="Say how many would go; delete nothing."
        )
        purge.add_argument("--noinput", action="store_true", help="Do not ask for confirmation.")
        commands.verbosity_option(purge, "0 quiet, 1 the summary (default).")

    def handle(self, *args: Any, **opts: Any) -> None:
        {"erase": self._erase, "audit": self._audit, "purge": self._purge}[opts["action"]](opts)

    # --- erase -------------------------------------------------------------------------

    def _target(self, opts: dict[str, Any]) -> ErasureTarget:
        text, user = opts["source"].strip(), opts["user"]
        source_id = source_find(text)
        if source_id is None:
            open_ingest = get_config().ingest.auth == "off"
            if not (text.isdigit() and int(text) < 2**64 and open_ingest):
                raise CommandError(
                    f"unknown source {text!r}: give a registered source's id or name"
                    " (manage.py sources list)",
                    returncode=USAGE_ERROR,
                )
            source_id = int(text)
        if not user.strip():
            raise CommandError("--user must not be empty", returncode=USAGE_ERROR)
        return ErasureTarget(source_id, user, tuple(get_config().privacy.user_paths))

    def _erase(self, opts: dict[str, Any]) -> None:
        target = self._target(opts)
        who = f"user {target.user!r} of source {target.source_id}"
        found = privacy_erase(target=target, by="", dry_run=True)
        if opts["dry_run"]:
            self._report(found, who=who, opts=opts, dry_run=True)
            return
        if found.events:
            commands.confirm(
                f"Erase {plural(found.events, 'event')} of {who}? This cannot be undone.",
                noinput=opts["noinput"],
            )
        bar = tqdm(
            total=found.events,
            unit="event",
            desc="erasing",
            file=sys.stderr,
            disable=True if opts["verbosity"] == 0 or opts["json"] else None,
        )
        try:
            by = opts["by"] or getpass.getuser()
            erased = privacy_erase(
                target=target, by=by, wait_s=opts["wait"], on_progress=bar.update
            )
        finally:
            bar.close()
        self._report(erased, who=who, opts=opts, dry_run=False)

    def _report(self, erased: Erased, *, who: str, opts: dict[str, Any], dry_run: bool) -> None:
        if opts["json"]:
            self.stdout.write(json.dumps({"dry_run": dry_run, **erased.as_dict()}))
            return
        if opts["verbosity"] >= 2:
            self.stdout.write(
                f"queue: {plural(erased.queue, 'event')}"
                f" ({plural(erased.queue_batches_removed, 'batch', 'batches')} left empty)\n"
                f"dead letters: {plural(erased.dead_letters, 'event')}"
                f" ({plural(erased.dead_letters_deleted, 'entry', 'entries')} left empty)\n"
                f"archive: {plural(erased.archive, 'event')}"
            )
        if opts["verbosity"] >= 1:
            stores = (
                f"queue {erased.queue:,}, dead letters {erased.dead_letters:,},"
                f" archive {erased.archive:,}"
            )
            if dry_run:
                self.stdout.write(
                    f"Would erase {plural(erased.events, 'event')} of {who} ({stores})."
                    " Dry run: nothing was changed."
                )
            else:
                self.stdout.write(
                    f"erased {plural(erased.events, 'event')} of {who} ({stores});"
                    f" audit #{erased.audit_id}"
                )
        if erased.in_flight and opts["verbosity"] >= 1:
            self.stderr.write(
                f"{plural(erased.in_flight, 'batch', 'batches')} holding the person's events"
                " were being processed: run this again once they are done (within"
                f" {get_config().queue.timeout} s), or with --wait, to erase them too."
            )

    # --- audit, purge ------------------------------------------------------------------

    def _audit(self, opts: dict[str, Any]) -> None:
        if (opts["source"] is None) != (opts["user"] is None):
            raise CommandError("give both --source and --user, or neither", returncode=USAGE_ERROR)
        target = self._target(opts) if opts["source"] is not None else None
        rows = audit_list(target=target, limit=opts["limit"])
        if opts["json"]:
            for r in rows:
                self.stdout.write(json.dumps(audit_as_dict(r)))
            return
        if opts["verbosity"] == 0:
            return
        if not rows:
            self.stdout.write("no erasures recorded")
            return
        head = ("ID", "STARTED", "BY", "SOURCE", "PERSON", "QUEUE", "DLQ", "ARCHIVE", "DONE")
        lines = [head] + [
            (
                str(r.pk),
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                r.by,
                str(r.source_id),
                r.user_digest[:12],
                f"{r.queue_events:,}",
                f"{r.dead_letter_events:,}",
                f"{r.archive_events:,}",
                "yes" if r.finished_at else "no",
            )
            for r in rows
        ]
        self.stdout.write(table(lines, right=frozenset({0, 5, 6, 7})))

    def _purge(self, opts: dict[str, Any]) -> None:
        age = opts["older_than"] or get_config().privacy.audit_retention
        if age is None:
            raise CommandError(
                "say how old: --older-than AGE (e.g. 365d), or set privacy.audit_retention"
                " in config.toml",
                returncode=USAGE_ERROR,
            )
        count = audit_purge(older_than=age, dry_run=True)
        what = f"{plural(count, 'erasure record')} older than {format_duration(age)}"
        if opts["dry_run"]:
            self.stdout.write(f"Would delete {what}. Dry run: nothing was changed.")
            return
        if count:
            commands.confirm(f"Delete {what}? This cannot be undone.", noinput=opts["noinput"])
        deleted = audit_purge(older_than=age) if count else 0
        if opts["verbosity"] >= 1:
            self.stdout.write(
                f"purged {plural(deleted, 'erasure record')} (older than {format_duration(age)})"
            )
