"""The README read as a newcomer reads it: its fenced blocks, in order, as steps.

* A ```` ```sh ```` block holds commands: each line not a comment, with its
  ``\\``-continued lines or its here-document.
* A ```` ```console ```` block holds ``$ command`` lines, each followed by what it
  prints; in those lines ``…`` stands for anything (a key, a time, a count).
* A ```` ```toml ```` block is a piece of ``config.toml`` the reader adds.
* Every other block (Python, JavaScript, HTML, YAML, HTTP) is read, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FENCE", "Step", "anchors", "output_matches", "readme_steps"]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
HEREDOC = re.compile(r"<<-?'?(\w+)'?")
HEADING = re.compile(r"^#+ (.+)$", re.M)
COMMENT = re.compile(r"\s+# [^'\"\n]*$")


@dataclass(frozen=True)
class Step:
    kind: Literal["command", "toml"]
    text: str  # the command as written (continuations joined) or the TOML
    output: tuple[str, ...] = ()  # what a console block shows it printing
    line: int = 0  # where in the README it starts

    @property
    def bare(self) -> str:
        """The command without its trailing comment."""
        return COMMENT.sub("", self.text)

    @property
    def shown(self) -> bool:
        """Whether the README shows what the command prints."""
        return any(line.strip() not in ("", "…") for line in self.output)


def _sh_commands(body: str, first_line: int) -> list[Step]:
    lines = body.splitlines()
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = [line]
        while text[-1].endswith("\\") and i < len(lines):
            text.append(lines[i])
            i += 1
        heredoc = HEREDOC.search(text[-1])
        if heredoc:
            while i < len(lines):
                text.append(lines[i])
                i += 1
                if text[-1] == heredoc.group(1):
                    break
        steps.append(Step("command", "\n".join(text), line=first_line + start))
    return steps


def _console_commands(body: str, first_line: int) -> list[Step]:
    steps: list[Step] = []
    for n, line in enumerate(body.splitlines()):
        if line.startswith("$ "):
            steps.append(Step("command", line[2:], line=first_line + n))
        elif steps:
            last = steps[-1]
            steps[-1] = Step("command", last.text, (*last.output, line), last.line)
    return steps


def readme_steps(text: str) -> list[tuple[str, list[Step]]]:
    """Every fenced block in order: its language and the steps it holds."""
    blocks: list[tuple[str, list[Step]]] = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        first = text.count("\n", 0, match.start(2)) + 1
        if language == "sh":
            steps = _sh_commands(body, first)
        elif language == "console":
            steps = _console_commands(body, first)
        elif language == "toml":
            steps = [Step("toml", body, line=first)]
        else:
            steps = []
        blocks.append((language, steps))
    return blocks


def _pattern(shown: str) -> re.Pattern[str]:
    words = (".*".join(re.escape(part) for part in word.split("…")) for word in shown.split())
    return re.compile(r"\s+".join(words))


def output_matches(shown: tuple[str, ...], printed: str) -> str | None:
    """None when every line the README shows is printed, in that order (``…``
    matches anything, runs of spaces any spaces); else the first line missing."""
    lines = [line.strip() for line in printed.splitlines()]
    at = 0
    for line in shown:
        if line.strip() in ("", "…"):
            continue
        pattern = _pattern(line)
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return line
        at += 1
    return None


def anchors(text: str) -> set[str]:
    """The fragment of each heading, as GitHub makes it: lower case, spaces to
    hyphens, punctuation other than hyphens and underscores dropped."""
    outside_code = FENCE.sub("", text)
    return {
        re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        for title in HEADING.findall(outside_code)
    }
