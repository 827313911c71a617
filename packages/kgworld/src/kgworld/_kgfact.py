"""KGFact records: train, paraphrase and twohop from the world graph, retrieval from a second,
disjoint knowledge base (:func:`kgworld._graph.retrieval_kb`).

Every record follows the shared schema (id, prompt, target, answer, context, split, meta).
The target ends in ``\\boxed{answer}``; ``kgfact.target`` picks its form (:func:`fact_target`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

from kgworld._config import ConfigError, KGFactConfig
from kgworld._graph import FactGraph, retrieval_kb
from kgworld._rng import derived_rng
from kgworld._schema import Relation, load_schema

# One JSON record as every stage reads it (DESIGN.md); values are JSON data.
Record = dict[str, Any]
RETRIEVAL_HEADER = "Background information:"


def _record(
    split: str,
    index: int,
    width: int,
    prompt: str,
    target: str,
    answer: str,
    context: str | None,
    meta: Mapping[str, Any],
) -> Record:
    return {
        "id": f"kgfact-{split}-{index:0{width}d}",
        "prompt": prompt,
        "target": target,
        "answer": answer,
        "context": context,
        "split": split,
        "meta": meta,
    }


def fact_target(statements: Sequence[str], answer: str, form: str) -> str:
    """The target of a question answered by ``statements`` (one fact, or a chain of them).

    ``answer`` (the authors'): "The answer is X.", a blank line, ``\\boxed{X}``; a chain is
    first spelled out as "Step k: <statement>" lines ending "So the answer is X.".
    ``statement``: the statements restated on one line, then `` \\boxed{X}``.
    """
    box = f"\\boxed{{{answer}}}"
    if form == "statement":
        return f"{' '.join(statements)} {box}"
    if len(statements) == 1:
        return f"The answer is {answer}.\n\n{box}"
    steps = "".join(f"Step {k}: {text}\n" for k, text in enumerate(statements, 1))
    return f"{steps}So the answer is {answer}.\n\n{box}"


def ask(relation: Relation, subject: str, template: int, instruction: str) -> str:
    """A relation's question about ``subject``, with the instruction after a blank line."""
    question = relation.ask(subject, template)
    return f"{question}\n\n{instruction}" if instruction else question


class _FactTable:
    """Facts with their rendered statements and, per entity, the facts that touch it."""

    def __init__(self, kg: FactGraph, config: KGFactConfig):
        self.schema = load_schema()
        self.config = config
        self.facts = kg.facts
        self.statements = [self.schema.relations[r].state(s, o) for s, r, o in self.facts]
        self.width = max(6, len(str(len(self.facts))))

    @cached_property
    def incident(self) -> dict[str, list[int]]:
        """Entity -> indices of the facts it takes part in (as subject or object)."""
        incident: dict[str, list[int]] = {}
        for i, (s, _, o) in enumerate(self.facts):
            incident.setdefault(s, []).append(i)
            incident.setdefault(o, []).append(i)
        return incident

    @cached_property
    def outgoing(self) -> dict[str, list[int]]:
        """Entity -> indices of the facts it is the subject of."""
        outgoing: dict[str, list[int]] = {}
        for i, (s, _, _) in enumerate(self.facts):
            outgoing.setdefault(s, []).append(i)
        return outgoing

    def question(self, relation: str, subject: str, template: int = 0) -> str:
        return ask(self.schema.relations[relation], subject, template, self.config.instruction)

    def target(self, facts: Sequence[int], answer: str) -> str:
        return fact_target([self.statements[i] for i in facts], answer, self.config.target)

    def fact_meta(self, i: int, template: int) -> dict[str, object]:
        s, r, o = self.facts[i]
        rel = self.schema.relations[r]
        return {
            "fact": i,
            "relation": r,
            "subject": s,
            "object": o,
            "subject_domain": rel.source,
            "object_domain": rel.target,
            "template": template,
        }


def _atomic(table: _FactTable, split: str, template_for: Callable[[int], int]) -> list[Record]:
    records = []
    for i, (s, r, o) in enumerate(table.facts):
        template = template_for(i)
        records.append(
            _record(
                split,
                i,
                table.width,
                table.question(r, s, template),
                table.target([i], o),
                o,
                None,
                table.fact_meta(i, template),
            )
        )
    return records


def _paraphrase(table: _FactTable, seed: int) -> list[Record]:
    rng = derived_rng(seed, "kgfact", "paraphrase")
    counts = [len(table.schema.relations[r].questions) for _, r, _ in table.facts]
    if min(counts, default=2) < 2:
        raise ConfigError("the paraphrase split needs at least two question templates per relation")
    choices = [rng.randrange(1, n) for n in counts]
    return _atomic(table, "paraphrase", choices.__getitem__)


def _twohop(table: _FactTable, seed: int) -> list[Record]:
    """Compose two facts a -r1-> b -r2-> c; the answer c is unique because relations are functional."""
    outgoing = table.outgoing
    # Path k of the world is (first fact, k-th continuation); count them without listing them all.
    starts = [0]
    for _, _, o in table.facts:
        starts.append(starts[-1] + len(outgoing.get(o, ())))
    total = starts[-1]
    limit = table.config.twohop_limit
    chosen: Sequence[int] = range(total)
    if limit is not None and limit < total:
        chosen = sorted(derived_rng(seed, "kgfact", "twohop").sample(range(total), limit))
    width = max(6, len(str(total)))
    records = []
    for n, k in enumerate(chosen):
        first = bisect.bisect_right(starts, k) - 1
        a, r1, b = table.facts[first]
        second = outgoing[b][k - starts[first]]
        c = table.facts[second][2]
        r2 = table.facts[second][1]
        description = table.schema.relations[r1].describe(a)
        target = table.target([first, second], c)
        meta = {"relations": [r1, r2], "path": [a, b, c], "facts": [first, second]}
        records.append(
            _record("twohop", n, width, table.question(r2, description), target, c, None, meta)
        )
    return records


def _retrieval_context(table: _FactTable, gold: int, rng) -> list[int]:
    """Gold fact + distractors: hop-1 facts of the query entities, then hop-2, then any others."""
    size = table.config.retrieval_context_size
    s, _, o = table.facts[gold]
    used = {gold}
    hop1 = [i for e in (s, o) for i in table.incident[e] if i not in used]
    hop1 = list(dict.fromkeys(hop1))
    used.update(hop1)
    neighbours = dict.fromkeys(e for i in hop1 for e in (table.facts[i][0], table.facts[i][2]))
    hop2 = [i for e in neighbours for i in table.incident[e] if i not in used]
    hop2 = list(dict.fromkeys(hop2))
    used.update(hop2)
    rng.shuffle(hop1)
    rng.shuffle(hop2)
    distractors = (hop1 + hop2)[: size - 1]
    missing = size - 1 - len(distractors)
    if missing > 0:  # a small world runs out of neighbours: fill with other facts of the world
        others: list[int] = []
        while len(others) < missing:
            i = rng.randrange(len(table.facts))
            if i not in used:
                used.add(i)
                others.append(i)
        distractors += others
    context = [gold, *distractors]
    rng.shuffle(context)
    return context


def _retrieval(kg: FactGraph, config: KGFactConfig, seed: int) -> list[Record]:
    """Questions about the facts of the retrieval knowledge base, each after a context of that
    KB's statements: in-context reasoning over facts the world never trains on."""
    kb = retrieval_kb(config, seed)
    shared = kb.domain_of.keys() & kg.domain_of.keys()
    if shared:  # an invariant of retrieval_kb's names, not a user error
        raise AssertionError(f"retrieval KB shares entities with the world: {sorted(shared)[:3]}")
    table = _FactTable(kb, config)
    size = config.retrieval_context_size
    if size > len(table.facts):
        raise ConfigError(
            f"kgfact.retrieval_context_size={size} needs at least {size} facts, "
            f"but this world has {len(table.facts)}"
        )
    chosen: Sequence[int] = range(len(table.facts))
    limit = table.config.retrieval_limit
    if limit is not None and limit < len(table.facts):
        chosen = sorted(derived_rng(seed, "kgfact", "retrieval-sample").sample(chosen, limit))
    records = []
    for n, i in enumerate(chosen):
        s, r, o = table.facts[i]
        rng = derived_rng(seed, "kgfact", "retrieval", i)
        context_ids = _retrieval_context(table, i, rng)
        context = "\n".join([RETRIEVAL_HEADER, *(f"- {table.statements[j]}" for j in context_ids)])
        meta = {
            "kb": "retrieval",
            "kb_fact": i,
            **{k: v for k, v in table.fact_meta(i, 0).items() if k != "fact"},
            "context_facts": [list(table.facts[j]) for j in context_ids],
        }
        records.append(
            _record(
                "retrieval",
                n,
                table.width,
                table.question(r, s),
                table.target([i], o),
                o,
                context,
                meta,
            )
        )
    return records


def kgfact_splits(kg: FactGraph, config: KGFactConfig, seed: int) -> dict[str, list[Record]]:
    """The configured KGFact splits, in the order train, paraphrase, twohop, retrieval."""
    table = _FactTable(kg, config)
    builders: dict[str, Callable[[], list[Record]]] = {
        "train": lambda: _atomic(table, "train", lambda i: 0),
        "paraphrase": lambda: _paraphrase(table, seed),
        "twohop": lambda: _twohop(table, seed),
        "retrieval": lambda: _retrieval(kg, config, seed),
    }
    return {name: build() for name, build in builders.items() if name in config.splits}
