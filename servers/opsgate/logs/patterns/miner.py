"""Online log template miner: Drain-style buckets over masked tokens, word-aware matching, merging.

Each message is masked (see ``masking``), split into tokens and routed to the bucket of messages with
the same token count and first token (a variable first token shares the ``<*>`` bucket). Inside the
bucket it joins the most similar cluster when enough positions agree and no position holds two
different *words* (see ``tokens``); positions holding different values become ``<*>``. Otherwise it
starts a new cluster.

Three merge rules run as clusters appear or change, and make the younger id an alias of the older one
(see ``TemplateMiner.resolve``):

* clusters identical except for one position where they hold different words are kept apart while
  there are few such words (an enumeration such as GET/POST/DELETE usually names different events),
  and merged once that position has taken ``variable_word_min_values`` different words (then it is a
  variable such as a user or host name), or as soon as two such groups of different messages share
  two of their words (words that fill the slots of two messages are names, not events);
* clusters whose templates become equal once each run of variables is collapsed to one ``<*>`` are
  merged (variable-length parameter lists), and so are clusters of different lengths where one
  variable of the shorter template spans the longer one's extra tokens (a value holding spaces).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from opsgate.logs.patterns.masking import WILDCARD, mask_digits, refine
from opsgate.logs.patterns.tokens import fits, generalize, is_value, is_variable


@dataclass(frozen=True)
class MinerConfig:
    """Settings of ``TemplateMiner``; the defaults are meant for any log, not one system."""

    similarity_threshold: float = 0.5
    """Share of token positions that must agree for a message to join a cluster."""
    variable_word_min_values: int = 5
    """Different words seen at one position of otherwise equal templates before it becomes ``<*>``."""
    max_tokens: int = 256
    """Tokens past this many are folded into one trailing ``<*>`` (bounds the cost of huge lines)."""
    cache_size: int = 200_000
    """Distinct masked messages remembered for the fast path; the cache is emptied when full."""

    def __post_init__(self) -> None:
        if not 0.0 < self.similarity_threshold <= 1.0:
            raise ValueError(f"similarity_threshold must be in (0, 1], got {self.similarity_threshold}")
        if self.variable_word_min_values < 2:
            raise ValueError(f"variable_word_min_values must be at least 2, got {self.variable_word_min_values}")
        if self.max_tokens < 2:
            raise ValueError(f"max_tokens must be at least 2, got {self.max_tokens}")
        if self.cache_size < 0:
            raise ValueError(f"cache_size must not be negative, got {self.cache_size}")


@dataclass(frozen=True)
class Template:
    """One mined template: its id, its text with ``<*>`` where values vary, and how many lines it has."""

    id: int
    text: str
    count: int


class _Cluster:
    __slots__ = ("bucket", "bucketed", "id", "tokens", "version")

    def __init__(self, cluster_id: int, tokens: list[str], bucket: tuple[int, str]) -> None:
        self.id = cluster_id
        self.tokens = tokens
        self.bucket = bucket
        self.bucketed = True
        self.version = 0
        """Bumped whenever ``tokens`` change, to spot stale entries in the sibling index."""


_SiblingKey = tuple[int, tuple[str, ...]]


def _shape(tokens: list[str]) -> tuple[str, ...]:
    """The template with each run of variable tokens collapsed to one ``<*>``."""
    out: list[str] = []
    for token in tokens:
        if is_variable(token):
            if not out or out[-1] != WILDCARD:
                out.append(WILDCARD)
        else:
            out.append(token)
    return tuple(out)


def _bucket_key(tokens: list[str]) -> tuple[int, str]:
    if not tokens:
        return (0, "")
    first = tokens[0]
    return (len(tokens), WILDCARD if WILDCARD in first or is_value(first) else first)


_PUNCTUATION = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum() and chr(c) != "_")
_FIELD = re.compile(r"\w[\w.-]*[=:]")  # a key=value field or a "label:" starts a new part of a message


def _spans(token: str) -> bool:
    """True for a template token that may stand for several message tokens: a variable, or ``key:<*>``."""
    return is_variable(token) or token.endswith(WILDCARD)


def _agree(mine: str, theirs: str) -> str | None:
    """The token covering both, when two aligned template tokens can belong to one event."""
    if mine == theirs or fits(theirs, mine):
        return mine
    if fits(mine, theirs):
        return theirs
    if is_variable(mine) or is_variable(theirs):
        return generalize(mine, theirs)
    return None


def _span_merge(short: list[str], long: list[str], threshold: float) -> list[str] | None:
    """``short`` generalised to cover ``long`` with one spanning token absorbing the extra tokens, or None.

    The extra tokens must not start a new ``key=value`` field or ``label:`` (``rhost=<*>`` and
    ``rhost=<*> user=root`` stay two events, as do ``L2 cache: <*>`` and ``L1 I cache: <*>, L1 D
    cache: <*>``), the absorbed run must start with a value (``Initializing <*>`` does not absorb
    ``Initializing Cryptographic API``), and enough of ``short`` must be literal words both share.
    """
    if WILDCARD not in "".join(short):
        return None  # no token of it can span anything
    extra = len(long) - len(short)
    literal = sum(1 for token in short if not is_variable(token))
    if literal < max(1.0, threshold * len(short)):
        return None
    for i, token in enumerate(short):
        # A value that starts where a variable stands (or fits a ``key:<*>`` token) may run on.
        if not _spans(token) or not (long[i] == token or fits(long[i], token) or is_value(long[i])):
            continue
        if any(_FIELD.match(t) for t in long[i + 1 : i + 1 + extra]):
            continue
        merged: list[str] = []
        for mine, theirs in zip(short[:i] + short[i + 1 :], long[:i] + long[i + 1 + extra :], strict=True):
            both = _agree(mine, theirs)
            if both is None:
                break
            merged.append(both)
        else:
            merged.insert(i, token)
            return merged
    return None


def _core(token: str) -> str:
    """A token without the punctuation around it: ``(LOOKING`` and ``LOOKING,`` name one thing."""
    return token.strip(_PUNCTUATION)


def _same_message(one: _SiblingKey, other: _SiblingKey, words: set[str]) -> bool:
    """True when two sibling groups are slots of one message rather than two messages.

    They are when their templates differ only at positions holding the shared ``words`` (or the
    slots themselves), as in ``LOOKING (n.state), LEADING (my state)``: one message whose two
    slots take the same states.
    """
    first, second = one[1], other[1]
    if len(first) != len(second):
        return False
    return all(
        a in (b, WILDCARD) or b == WILDCARD or _core(a) in words or _core(b) in words
        for a, b in zip(first, second, strict=True)
    )


class TemplateMiner:
    """Groups log messages into templates online; ``add`` returns the template id of each message.

    Ids are never reused. When two clusters are merged the younger id becomes an alias: ``add`` from
    then on returns the surviving id, ``resolve`` maps any id ever returned to its surviving id, and
    ``templates`` lists surviving ids only, with the counts of their aliases included.
    """

    def __init__(self, config: MinerConfig | None = None) -> None:
        self._config = config or MinerConfig()
        self._clusters: list[_Cluster] = []
        self._parent: list[int] = []
        self._counts: list[int] = []
        self._buckets: dict[tuple[int, str], list[_Cluster]] = {}
        self._by_shape: dict[tuple[str, ...], int] = {}
        self._by_head: dict[str, list[_Cluster]] = {}
        self._siblings: dict[_SiblingKey, list[tuple[int, int]]] = {}
        self._slot_words: dict[str, set[_SiblingKey]] = {}
        self._cache: dict[str, int] = {}

    @property
    def config(self) -> MinerConfig:
        return self._config

    @property
    def cluster_count(self) -> int:
        """Clusters created so far, aliases included (what the miner holds in memory)."""
        return len(self._clusters)

    def add(self, message: str) -> int:
        """Assign ``message`` (the content part of a log line, without its header) to a template."""
        masked = mask_digits(message)
        cached = self._cache.get(masked)
        if cached is not None:
            self._counts[cached] += 1
            parent = self._parent
            root = parent[cached]
            return root if parent[root] == root else self.resolve(cached)
        tokens = refine(masked).split()
        if len(tokens) > self._config.max_tokens:
            tokens = [*tokens[: self._config.max_tokens - 1], WILDCARD]
        cluster, siblings = self._match(tokens)
        if cluster is None:
            cluster = self._create(tokens, siblings)
        else:
            self._absorb(cluster, tokens)
        self._counts[cluster.id] += 1
        if self._config.cache_size:
            if len(self._cache) >= self._config.cache_size:
                self._cache.clear()
            self._cache[masked] = cluster.id
        return self.resolve(cluster.id)

    def resolve(self, template_id: int) -> int:
        """The surviving id for any id ``add`` returned (itself unless its cluster was merged)."""
        if not 0 <= template_id < len(self._parent):
            raise KeyError(f"unknown template id {template_id}")
        parent = self._parent
        root = template_id
        while parent[root] != root:
            root = parent[root]
        while parent[template_id] != root:
            parent[template_id], template_id = root, parent[template_id]
        return root

    def templates(self) -> list[Template]:
        """Surviving templates, most frequent first."""
        counts: dict[int, int] = {}
        for cluster_id, count in enumerate(self._counts):
            root = self.resolve(cluster_id)
            counts[root] = counts.get(root, 0) + count
        result = [Template(root, " ".join(self._clusters[root].tokens), n) for root, n in counts.items()]
        result.sort(key=lambda t: (-t.count, t.id))
        return result

    # -- matching -----------------------------------------------------------------------------

    def _match(self, tokens: list[str]) -> tuple[_Cluster | None, list[tuple[_Cluster, int]]]:
        """The cluster ``tokens`` join, or None plus the clusters they differ from by one word only."""
        key = _bucket_key(tokens)
        found, siblings = self._best_in(self._buckets.get(key), tokens)
        if found is None and key[1] != WILDCARD:
            found, more = self._best_in(self._buckets.get((key[0], WILDCARD)), tokens)
            siblings += more
        return found, siblings

    def _best_in(
        self, bucket: list[_Cluster] | None, tokens: list[str]
    ) -> tuple[_Cluster | None, list[tuple[_Cluster, int]]]:
        siblings: list[tuple[_Cluster, int]] = []
        if not bucket:
            return None, siblings
        best: _Cluster | None = None
        best_same = -1
        for cluster in bucket:
            same = 0
            conflict = -1  # position of the one word that differs, if any
            exact = True
            for position, (mine, theirs) in enumerate(zip(cluster.tokens, tokens, strict=True)):
                if mine == theirs:
                    same += 1
                    continue
                if mine == WILDCARD:
                    exact = False
                elif fits(theirs, mine) or fits(mine, theirs):
                    same += 1
                    exact = False
                elif is_value(mine) or is_value(theirs):
                    exact = False
                elif conflict < 0 and position > 0:
                    conflict = position
                else:
                    conflict = -2  # a second differing word, or the first token: not a sibling
                    break
            if conflict != -1:
                if conflict > 0 and exact:
                    siblings.append((cluster, conflict))
            elif same > best_same:
                best, best_same = cluster, same
        if best is None or best_same < self._config.similarity_threshold * len(tokens):
            return None, siblings
        return best, []

    # -- cluster upkeep -----------------------------------------------------------------------

    def _create(self, tokens: list[str], siblings: list[tuple[_Cluster, int]]) -> _Cluster:
        cluster = _Cluster(len(self._clusters), tokens, _bucket_key(tokens))
        self._clusters.append(cluster)
        self._parent.append(cluster.id)
        self._counts.append(0)
        self._buckets.setdefault(cluster.bucket, []).append(cluster)
        self._by_head.setdefault(cluster.bucket[1], []).append(cluster)
        self._changed(cluster)
        for sibling, position in siblings:
            if self._parent[cluster.id] != cluster.id:
                break
            self._join_siblings(cluster, sibling, position)
        return cluster

    def _absorb(self, cluster: _Cluster, tokens: list[str]) -> None:
        changed = False
        template = cluster.tokens
        for i, (mine, theirs) in enumerate(zip(template, tokens, strict=True)):
            if mine in (theirs, WILDCARD) or fits(theirs, mine):
                continue
            template[i] = theirs if fits(mine, theirs) else generalize(mine, theirs)
            changed = True
        if changed:
            self._changed(cluster)

    def _changed(self, cluster: _Cluster) -> None:
        """Re-index a new or generalised cluster and merge it with an older one of the same shape."""
        cluster.version += 1
        self._rebucket(cluster)
        shape = _shape(cluster.tokens)
        other = self._by_shape.setdefault(shape, cluster.id)
        if other != cluster.id:
            # The alias stays in its bucket: lines of its length keep landing on it, not on new clusters.
            self._alias(cluster.id, other, unbucket=False)
            return
        self._merge_covered(cluster)
        self._merge_spans(cluster)

    def _merge_covered(self, cluster: _Cluster) -> None:
        """Merge the clusters of ``cluster``'s bucket that its (just generalised) template now covers.

        ``Server environment:os.name=Linux`` became a cluster of its own while the other template
        read ``Server environment:java.version=<*>``; once that one reads ``Server environment:<*>``
        it covers the first, and a line of either now belongs to one event.
        """
        if WILDCARD not in " ".join(cluster.tokens):
            return
        template, parent = cluster.tokens, self._parent
        for other in list(self._buckets.get(cluster.bucket, ())):
            if other is cluster or parent[other.id] != other.id:
                continue
            if all(
                mine in (theirs, WILDCARD) or fits(theirs, mine)
                for mine, theirs in zip(template, other.tokens, strict=True)
            ):
                self._alias(other.id, cluster.id, unbucket=False)
                keep = self._clusters[self.resolve(cluster.id)]
                if keep is not cluster:
                    keep.tokens = list(template)
                    keep.version += 1

    def _merge_spans(self, cluster: _Cluster) -> None:
        """Merge ``cluster`` with a cluster of another length when one variable spans the difference.

        ``Server environment:<*>`` and ``Server environment:java.vendor=Oracle Corporation`` are one
        event whose value holds a space: the shorter template's variable absorbs the longer one's
        extra tokens, and the shorter template (with every literal word both share) survives.
        """
        parent = self._parent
        for other in self._by_head.get(cluster.bucket[1], ()):
            if other is cluster or parent[other.id] != other.id or len(other.tokens) == len(cluster.tokens):
                continue
            short, long = (other, cluster) if len(other.tokens) < len(cluster.tokens) else (cluster, other)
            merged = _span_merge(short.tokens, long.tokens, self._config.similarity_threshold)
            if merged is None:
                continue
            self._alias(short.id, long.id, unbucket=False)
            keep = self._clusters[self.resolve(short.id)]
            keep.tokens = merged
            self._changed(keep)
            return

    def _join_siblings(self, cluster: _Cluster, sibling: _Cluster, position: int) -> None:
        """Record two clusters that differ by the word at ``position``; merge the group once it is large."""
        tokens = sibling.tokens
        key = (position, (*tokens[:position], WILDCARD, *tokens[position + 1 :]))
        members = self._siblings.setdefault(key, [])
        for member in (sibling, cluster):
            entry = (member.id, member.version)
            if entry not in members:
                members.append(entry)
        live = self._live_siblings(members)
        if len(live) >= self._config.variable_word_min_values:
            self._merge_siblings(live, position)
            return
        self._share_words(key, live)

    def _share_words(self, key: _SiblingKey, live: list[int]) -> None:
        """Merge two sibling groups whose differing words overlap: those words are names, not events.

        ``session opened for user cyrus`` / ``... news`` and ``session closed for user cyrus`` /
        ``... news`` take the same words at their differing position; words that fill the slot of two
        different messages are entities (users, hosts, queues), while an enumeration such as
        GET/POST/DELETE belongs to one message.
        """
        words = {self._clusters[i].tokens[key[0]] for i in live}
        seen: dict[_SiblingKey, int] = {}
        vocabulary = {_core(word) for word in words}
        for word in words:
            groups = self._slot_words.setdefault(word, set())
            for other in groups:
                if other != key:
                    seen[other] = seen.get(other, 0) + 1
            groups.add(key)
        for other, shared in seen.items():
            if shared < 2:
                continue
            other_live = self._live_siblings(self._siblings[other])
            both = vocabulary | {_core(self._clusters[i].tokens[other[0]]) for i in other_live}
            if len(other_live) >= 2 and not _same_message(key, other, both):
                self._merge_siblings(live, key[0])
                self._merge_siblings(other_live, other[0])
                return

    def _live_siblings(self, members: list[tuple[int, int]]) -> list[int]:
        """Ids of the entries whose cluster survives unchanged; stale entries are dropped."""
        clusters, parent = self._clusters, self._parent
        members[:] = [(i, v) for i, v in members if parent[i] == i and clusters[i].version == v]
        return [i for i, _ in members]

    def _merge_siblings(self, members: list[int], position: int) -> None:
        keep = self._clusters[min(members)]
        for member in members:
            if member != keep.id:
                self._alias(member, keep.id)
        word = keep.tokens[position]
        for member in members:
            word = generalize(word, self._clusters[member].tokens[position])
        keep.tokens[position] = word
        self._changed(keep)

    def _alias(self, one: int, other: int, *, unbucket: bool = True) -> None:
        """Make the younger of two roots an alias of the older; ``unbucket`` stops it matching lines."""
        one_root, other_root = self.resolve(one), self.resolve(other)
        if one_root == other_root:
            return
        keep, alias = min(one_root, other_root), max(one_root, other_root)
        self._parent[alias] = keep
        gone = self._clusters[alias]
        if unbucket and gone.bucketed:
            self._buckets[gone.bucket].remove(gone)
            gone.bucketed = False

    def _rebucket(self, cluster: _Cluster) -> None:
        key = _bucket_key(cluster.tokens)
        if key != cluster.bucket and cluster.bucketed:
            self._buckets[cluster.bucket].remove(cluster)
            self._buckets.setdefault(key, []).append(cluster)
        cluster.bucket = key


def mine(messages: Iterable[str], config: MinerConfig | None = None) -> tuple[list[int], list[Template]]:
    """Mine ``messages`` in one go: the (surviving) template id of each message, and the templates."""
    miner = TemplateMiner(config)
    ids = [miner.add(message) for message in messages]
    return [miner.resolve(i) for i in ids], miner.templates()
