"""The edit split: counterfactual revisions of KGFact train facts, for knowledge editing.

``edit.count`` facts, a deterministic sample of the KGFact train facts (so the edits revise
knowledge a stage-1 model learned), each get a new object of the same domain. Files under
``edit/``, all in the shared record schema:

* ``train``: one record per edit, asked with the training question template; the target states
  the new object. ``meta.rewrite`` is the MEMIT / MQuAKE request
  ``{"prompt": "{} resides in", "subject": ..., "target_new": ..., "target_true": ...}``: the
  statement template before ``{object}``, the subject written once as ``{}``.
* ``paraphrase``: the same edits asked with a held-out question template.
* ``multihop``: questions of 2-4 hops (the MQuAKE idea) whose chain in the edited world passes
  through at least one edit and whose answer differs from the original world's.
* ``locality``: questions on facts left unedited, neighbours of the edits first; same answers.

A new object is never an object its relation already has, in the original world or through an
earlier edit. Both functions the world guarantees, (subject, relation) -> object and
(relation, object) -> subject, therefore hold in the edited world too, so every question still
has exactly one answer (``kgworld check`` re-verifies this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kgworld._config import ConfigError, EditConfig, KGWorldError, WorldConfig
from kgworld._graph import FactGraph
from kgworld._kgfact import Record, _record, ask, fact_target
from kgworld._rng import derived_rng
from kgworld._schema import Relation, load_schema

# A new object is chosen among this many random entities of the old object's domain (all of
# them in the presets' worlds), so a million-fact world costs O(count), not O(entities).
NEW_OBJECT_CANDIDATES = 64
# Worlds up to this many facts are shuffled whole; larger ones are sampled without listing them.
_SHUFFLE_LIMIT = 50_000


@dataclass(frozen=True)
class Edit:
    """Fact ``fact`` (``subject`` -``relation``-> ``old``) now points to ``new``."""

    fact: int
    subject: str
    relation: str
    old: str
    new: str


def rewrite_prompt(relation: Relation) -> str:
    """The MEMIT prompt of a relation: its statement up to ``{object}``, the subject as ``{}``."""
    head, found, tail = relation.statement.partition("{object}")
    if not found or tail != "." or head.count("{subject}") != 1:
        raise ConfigError(
            f"relation {relation.name!r}: the edit split needs a statement that names "
            f"{{subject}} once and ends with '{{object}}.', got {relation.statement!r}"
        )
    prompt = head.rstrip().replace("{subject}", "{}")
    return prompt[:1].upper() + prompt[1:]


def rewrite_request(relation: Relation, subject: str, new: str, old: str) -> dict[str, str]:
    return {
        "prompt": rewrite_prompt(relation),
        "subject": subject,
        "target_new": new,
        "target_true": old,
    }


@dataclass(frozen=True)
class Rewrite:
    """An edit request: after ``prompt.replace("{}", subject)`` comes ``target_new`` (was
    ``target_true``)."""

    prompt: str
    subject: str
    target_new: str
    target_true: str | None


def read_rewrite(record: dict[str, Any], where: str) -> Rewrite:
    """A record's edit request (``meta.rewrite``), checked: prompt, subject and target_new are
    non-empty strings (subject and target_new stripped), the prompt holds ``{}`` once, and
    target_true is a string or null. Errors start with ``where`` and name the field."""
    meta = record.get("meta")
    rewrite = meta.get("rewrite") if isinstance(meta, dict) else None
    if not isinstance(rewrite, dict):
        raise KGWorldError(f"{where}: missing field 'meta.rewrite' (an edit request needs one)")
    for name in ("prompt", "subject", "target_new"):
        value = rewrite.get(name)
        if not isinstance(value, str) or not value.strip():
            raise KGWorldError(f"{where}: field 'meta.rewrite.{name}' must be a non-empty string")
    if rewrite["prompt"].count("{}") != 1:
        raise KGWorldError(
            f"{where}: field 'meta.rewrite.prompt' must contain '{{}}' exactly once "
            f"(where the subject goes), got {rewrite['prompt']!r}"
        )
    true = rewrite.get("target_true")
    if true is not None and not isinstance(true, str):
        raise KGWorldError(f"{where}: field 'meta.rewrite.target_true' must be a string or null")
    return Rewrite(
        prompt=rewrite["prompt"],
        subject=rewrite["subject"].strip(),
        target_new=rewrite["target_new"].strip(),
        target_true=true,
    )


class _Index:
    """The graph seen from both sides, in the original world and with the edits applied."""

    def __init__(self, kg: FactGraph):
        self.kg = kg
        self.facts = kg.facts
        self.outgoing: dict[str, list[int]] = {}
        self.incoming: dict[str, list[int]] = {}
        for i, (s, _, o) in enumerate(self.facts):
            self.outgoing.setdefault(s, []).append(i)
            self.incoming.setdefault(o, []).append(i)
        self.new_object: dict[int, str] = {}
        self.new_incoming: dict[str, list[int]] = {}

    def apply(self, edit: Edit) -> None:
        self.new_object[edit.fact] = edit.new
        self.new_incoming.setdefault(edit.new, []).append(edit.fact)

    def obj(self, i: int, *, edited: bool) -> str:
        return self.new_object.get(i, self.facts[i][2]) if edited else self.facts[i][2]

    def follow(self, entity: str, relation: str, *, edited: bool) -> str | None:
        for j in self.outgoing.get(entity, ()):
            if self.facts[j][1] == relation:
                return self.obj(j, edited=edited)
        return None

    def incoming_edited(self, entity: str) -> list[int]:
        kept = [j for j in self.incoming.get(entity, ()) if j not in self.new_object]
        return kept + self.new_incoming.get(entity, [])

    def relations_from(self, entity: str) -> set[str]:
        return {self.facts[j][1] for j in self.outgoing.get(entity, ())}

    def has_object(self, relation: str, entity: str) -> bool:
        """Whether ``relation`` already points to ``entity``, originally or through an edit."""
        linked = (*self.incoming.get(entity, ()), *self.new_incoming.get(entity, ()))
        return any(self.facts[j][1] == relation for j in linked)


def _new_object(index: _Index, i: int, seed: int) -> str | None:
    _, relation, old = index.facts[i]
    names = index.kg.entities[index.kg.domain_of[old]]
    rng = derived_rng(seed, "edit", "object", i)
    candidates = rng.sample(names, min(len(names), NEW_OBJECT_CANDIDATES))
    valid = [c for c in candidates if c != old and not index.has_object(relation, c)]
    if not valid:
        return None
    # Prefer an object that shares an outgoing relation with the old one: chains can then run
    # on past the edit, so multi-hop questions may hit it mid-chain, not only at their end.
    # max() keeps the first best candidate in the random order.
    following = index.relations_from(old)
    return max(valid, key=lambda c: len(following & index.relations_from(c)))


def choose_edits(index: _Index, config: EditConfig, seed: int) -> list[Edit]:
    """``config.count`` edits in fact order; each one is applied to ``index`` as it is chosen."""
    n = len(index.facts)
    if config.count > n:
        raise ConfigError(f"edit.count={config.count} but the world has only {n} facts")
    rng = derived_rng(seed, "edit", "facts")
    order = rng.sample(range(n), n if n <= _SHUFFLE_LIMIT else min(n, 4 * config.count + 64))
    edits: list[Edit] = []
    for i in order:
        if len(edits) == config.count:
            break
        new = _new_object(index, i, seed)
        if new is None:  # the relation already points to every candidate of the domain
            continue
        s, r, o = index.facts[i]
        edit = Edit(i, s, r, o, new)
        index.apply(edit)
        edits.append(edit)
    if len(edits) < config.count:
        raise ConfigError(
            f"edit.count={config.count}: only {len(edits)} facts can take a new object that "
            "their relation does not already have; ask for fewer edits or use more "
            "kgfact.relations_per_pair"
        )
    return sorted(edits, key=lambda e: e.fact)


def _train(edits: list[Edit], instruction: str, form: str) -> list[Record]:
    schema = load_schema()
    width = max(6, len(str(len(edits))))
    records = []
    for n, e in enumerate(edits):
        rel = schema.relations[e.relation]
        meta = {
            "fact": e.fact,
            "relation": e.relation,
            "subject": e.subject,
            "old_answer": e.old,
            "template": 0,
            "rewrite": rewrite_request(rel, e.subject, e.new, e.old),
        }
        target = fact_target([rel.state(e.subject, e.new)], e.new, form)
        question = ask(rel, e.subject, 0, instruction)
        records.append(_record("edit", n, width, question, target, e.new, None, meta))
    return records


def _paraphrase(
    edits: list[Edit], ids: dict[int, str], instruction: str, form: str, seed: int
) -> list[Record]:
    schema = load_schema()
    rng = derived_rng(seed, "edit", "paraphrase")
    width = max(6, len(str(len(edits))))
    records = []
    for n, e in enumerate(edits):
        rel = schema.relations[e.relation]
        if len(rel.questions) < 2:
            raise ConfigError(f"relation {e.relation!r}: a paraphrase needs two question templates")
        template = rng.randrange(1, len(rel.questions))
        meta = {
            "edit_id": ids[e.fact],
            "fact": e.fact,
            "relation": e.relation,
            "subject": e.subject,
            "old_answer": e.old,
            "template": template,
        }
        target = fact_target([rel.state(e.subject, e.new)], e.new, form)
        question = ask(rel, e.subject, template, instruction)
        records.append(_record("edit-paraphrase", n, width, question, target, e.new, None, meta))
    return records


def _prefixes(index: _Index, entity: str, depth: int) -> Iterator[tuple[int, ...]]:
    """Edited-world chains of at most ``depth`` facts that end at ``entity`` (the empty one too)."""
    yield ()
    if depth:
        for j in index.incoming_edited(entity):
            for prefix in _prefixes(index, index.facts[j][0], depth - 1):
                yield (*prefix, j)


def _suffixes(index: _Index, entity: str, depth: int) -> Iterator[tuple[int, ...]]:
    """Edited-world chains of at most ``depth`` facts that start at ``entity`` (the empty one too)."""
    yield ()
    if depth:
        for j in index.outgoing.get(entity, ()):
            for suffix in _suffixes(index, index.obj(j, edited=True), depth - 1):
                yield (j, *suffix)


def _walk(index: _Index, start: str, relations: list[str], *, edited: bool) -> list[str] | None:
    path = [start]
    for relation in relations:
        nxt = index.follow(path[-1], relation, edited=edited)
        if nxt is None:
            return None
        path.append(nxt)
    return path


def _multihop(
    index: _Index, edits: list[Edit], ids: dict[int, str], config: WorldConfig
) -> list[Record]:
    """Chains through an edit whose answer the edit changes, sampled per hop count.

    Domains only link earlier -> later, so chains never loop and a world with D domains has
    chains of at most D - 1 hops. A chain is kept only when the original world answers the same
    question (its relations, from its first subject) with a different entity.
    """
    edit = config.edit
    longest = edit.multihop_max_hops
    chains: set[tuple[int, ...]] = set()
    for e in edits:
        for prefix in _prefixes(index, e.subject, longest - 1):
            for suffix in _suffixes(index, e.new, longest - 1 - len(prefix)):
                if len(prefix) + 1 + len(suffix) >= edit.multihop_min_hops:
                    chains.add((*prefix, e.fact, *suffix))
    by_hops: dict[int, list[tuple[tuple[int, ...], list[str], list[str]]]] = {}
    for chain in sorted(chains, key=lambda c: (len(c), c)):
        start = index.facts[chain[0]][0]
        relations = [index.facts[j][1] for j in chain]
        path = [start, *(index.obj(j, edited=True) for j in chain)]
        old_path = _walk(index, start, relations, edited=False)
        if old_path is not None and old_path[-1] != path[-1]:
            by_hops.setdefault(len(chain), []).append((chain, path, old_path))
    chosen = []
    for hops, group in sorted(by_hops.items()):
        limit = edit.multihop_per_hops
        if limit is not None and limit < len(group):
            picks = derived_rng(config.seed, "edit", "multihop", hops).sample(
                range(len(group)), limit
            )
            group = [group[p] for p in sorted(picks)]
        chosen += group
    schema = load_schema()
    width = max(6, len(str(len(chosen))))
    records = []
    for n, (chain, path, old_path) in enumerate(chosen):
        rels = [schema.relations[index.facts[j][1]] for j in chain]
        description = path[0]
        for rel in rels[:-1]:
            description = rel.describe(description)
        question = ask(rels[-1], description, 0, config.kgfact.instruction)
        statements = [rel.state(path[k], path[k + 1]) for k, rel in enumerate(rels)]
        meta = {
            "hops": len(chain),
            "relations": [rel.name for rel in rels],
            "path": path,
            "old_path": old_path,
            "old_answer": old_path[-1],
            "facts": list(chain),
            "edit_ids": [ids[j] for j in chain if j in ids],
        }
        target = fact_target(statements, path[-1], config.kgfact.target)
        records.append(_record("edit-multihop", n, width, question, target, path[-1], None, meta))
    return records


def _other_facts(index: _Index, excluded: set[int], need: int, rng) -> list[int]:
    n = len(index.facts)
    need = min(need, n - len(excluded))
    if n <= _SHUFFLE_LIMIT or n - len(excluded) < 2 * need:
        pool = [j for j in range(n) if j not in excluded]
        rng.shuffle(pool)
        return pool[:need]
    picked: dict[int, None] = {}
    while len(picked) < need:  # most facts qualify, so this ends after ~need draws
        j = rng.randrange(n)
        if j not in excluded:
            picked[j] = None
    return list(picked)


def _locality(index: _Index, edits: list[Edit], config: WorldConfig) -> list[Record]:
    edited = index.new_object
    touched = dict.fromkeys(x for e in edits for x in (e.subject, e.old, e.new))
    neighbours = dict.fromkeys(
        j
        for x in touched
        for j in (*index.outgoing.get(x, ()), *index.incoming.get(x, ()))
        if j not in edited
    )
    rng = derived_rng(config.seed, "edit", "locality")
    near = list(neighbours)
    rng.shuffle(near)
    count = config.edit.locality_count
    chosen = near[:count]
    if len(chosen) < count:
        chosen += _other_facts(index, {*neighbours, *edited}, count - len(chosen), rng)
    chosen.sort(key=lambda j: (j not in neighbours, j))
    schema = load_schema()
    width = max(6, len(str(len(chosen))))
    records = []
    for n, j in enumerate(chosen):
        s, r, o = index.facts[j]
        rel = schema.relations[r]
        meta = {
            "fact": j,
            "relation": r,
            "subject": s,
            "template": 0,
            "neighbourhood": j in neighbours,
        }
        question = ask(rel, s, 0, config.kgfact.instruction)
        target = fact_target([rel.state(s, o)], o, config.kgfact.target)
        records.append(_record("edit-locality", n, width, question, target, o, None, meta))
    return records


def edit_splits(kg: FactGraph, config: WorldConfig) -> dict[str, list[Record]]:
    """The configured edit splits, in the order train, paraphrase, multihop, locality."""
    index = _Index(kg)
    edits = choose_edits(index, config.edit, config.seed)
    instruction, form = config.kgfact.instruction, config.kgfact.target
    train = _train(edits, instruction, form)
    ids = {e.fact: str(record["id"]) for e, record in zip(edits, train, strict=True)}
    builders: dict[str, Callable[[], list[Record]]] = {
        "train": lambda: train,
        "paraphrase": lambda: _paraphrase(edits, ids, instruction, form, config.seed),
        "multihop": lambda: _multihop(index, edits, ids, config),
        "locality": lambda: _locality(index, edits, config),
    }
    return {name: build() for name, build in builders.items() if name in config.edit.splits}
