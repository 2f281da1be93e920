"""A folder of Markdown runbooks with YAML front matter, indexed by section with BM25."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import frontmatter
import yaml
from rank_bm25 import BM25Okapi

from opsgate.contracts import ToolError

_WORD = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_STOP = frozenset(
    "a an and are as at be by for from has have how if in is it its of on or that the this to was were what"
    " when which with you your".split()
)
MAX_RUNBOOK_BYTES = 1_000_000


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        tokens.append(word)
        if any(c in word for c in "._-"):
            tokens.extend(p for p in re.split(r"[._-]", word) if p and p not in _STOP)
    return tokens


def anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


@dataclass(frozen=True)
class Section:
    heading: str
    first_line: int
    last_line: int
    text: str


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    services: list[str]
    alerts: list[str]
    owner: str | None
    approved: bool
    updated: date | None
    version: str
    path: Path
    body: str
    sections: list[Section]


class RunbookFolderError(Exception):
    """A runbook file cannot be loaded; the message names the file."""


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ValueError(f"expected a string or a list, got {type(value).__name__}")


def _sections(body: str, offset: int, title: str) -> list[Section]:
    lines = body.splitlines()
    starts: list[tuple[int, str]] = [(i, m.group(2)) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    if not starts or starts[0][0] != 0:
        starts.insert(0, (0, title))
    sections = []
    for n, (start, heading) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        text = "\n".join(lines[start:end]).strip()
        if text:
            sections.append(Section(heading, offset + start + 1, offset + max(start, end - 1) + 1, text))
    return sections


def load_runbook(path: Path, root: Path) -> Runbook:
    raw = path.read_bytes()
    if len(raw) > MAX_RUNBOOK_BYTES:
        raise RunbookFolderError(f"{path}: larger than {MAX_RUNBOOK_BYTES} bytes")
    try:
        post = frontmatter.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunbookFolderError(f"{path}: cannot parse front matter: {exc}") from None
    meta = post.metadata
    rel = path.relative_to(root)
    try:
        runbook_id = str(meta.get("id") or rel.with_suffix("").as_posix().replace("/", "."))
        title = str(meta.get("title") or runbook_id)
        updated = meta.get("updated")
        if updated is not None and not isinstance(updated, date):
            updated = date.fromisoformat(str(updated))
        text = raw.decode("utf-8")
        start = text.find(post.content) if post.content else -1
        front_lines = text[:start].count("\n") if start >= 0 else 0
        return Runbook(
            id=runbook_id,
            title=title,
            services=_as_list(meta.get("services")),
            alerts=_as_list(meta.get("alerts")),
            owner=None if meta.get("owner") is None else str(meta.get("owner")),
            approved=meta.get("approved") is True,
            updated=updated,
            version="sha256:" + hashlib.sha256(raw).hexdigest(),
            path=path,
            body=post.content,
            sections=_sections(post.content, front_lines, title),
        )
    except ValueError as exc:
        raise RunbookFolderError(f"{path}: invalid front matter: {exc}") from None


class RunbookStore:
    """Loads every `*.md` under `root` (never following paths out of it) and ranks sections with BM25."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not self.root.is_dir():
            raise RunbookFolderError(f"runbook folder {self.root} does not exist")
        self.runbooks: dict[str, Runbook] = {}
        self.problems: list[str] = []
        for path in sorted(self.root.rglob("*.md")):
            resolved = path.resolve()
            if not resolved.is_relative_to(self.root) or not resolved.is_file():
                self.problems.append(f"{path}: skipped, it points outside the runbook folder")
                continue
            if path.name.lower() == "readme.md":
                continue
            try:
                runbook = load_runbook(resolved, self.root)
            except RunbookFolderError as exc:
                self.problems.append(str(exc))
                continue
            if runbook.id in self.runbooks:
                self.problems.append(f"{path}: duplicate runbook id {runbook.id!r}, skipped")
                continue
            self.runbooks[runbook.id] = runbook
        self._entries: list[tuple[Runbook, Section]] = [
            (rb, section) for rb in self.runbooks.values() for section in rb.sections
        ]
        corpus = [
            tokenize(f"{rb.title} {' '.join(rb.services)} {' '.join(rb.alerts)} {section.text}")
            for rb, section in self._entries
        ]
        self._bm25 = BM25Okapi(corpus) if corpus else None

    def get(self, runbook_id: str) -> Runbook:
        try:
            return self.runbooks[runbook_id]
        except KeyError:
            raise ToolError(f"no runbook with id {runbook_id!r}; use runbook_search to find one") from None

    def search(
        self, query: str | None, *, service: str | None = None, alert: str | None = None
    ) -> list[tuple[Runbook, Section, float]]:
        """Runbooks ranked by their best section's BM25 score, with that section as the citation.

        With `alert`, only runbooks whose front matter lists that alert (case-insensitively), each found
        even when no query word matches it (then cited by its first section, score 0)."""
        if self._bm25 is None:
            return []
        tokens = tokenize(query) if query else []
        if query and not tokens and alert is None:
            raise ToolError("the query has no searchable words")
        scores = self._bm25.get_scores(tokens) if tokens else [0.0] * len(self._entries)
        wanted = alert.lower() if alert else None
        best: dict[str, tuple[Runbook, Section, float]] = {}
        for (rb, section), score in zip(self._entries, scores, strict=True):
            if service and service not in rb.services:
                continue
            if wanted is not None and wanted not in (a.lower() for a in rb.alerts):
                continue
            if score <= 0 and wanted is None:
                continue
            if rb.id not in best or score > best[rb.id][2]:
                best[rb.id] = (rb, section, float(score))
        return sorted(best.values(), key=lambda hit: (-hit[2], hit[0].id))
