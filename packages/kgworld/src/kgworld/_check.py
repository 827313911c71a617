"""Re-verify every invariant of a world, and count what it holds.

``check_world`` recomputes each answer from the graph (retrieval answers from the retrieval
knowledge base, rebuilt from the config; KGFunc's from the operation) rather than trusting the
records, so a hand-edited or corrupted world is caught.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache

from kgworld._edit import rewrite_request
from kgworld._graph import retrieval_kb, world_domains
from kgworld._kgfact import RETRIEVAL_HEADER, fact_target
from kgworld._kgfunc import recompute_answer
from kgworld._schema import load_schema
from kgworld._verify import extract_boxed
from kgworld._world import World

RECORD_KEYS = ("id", "prompt", "target", "answer", "context", "split", "meta")


def _graph_violations(world: World) -> Iterator[str]:
    schema = load_schema()
    domains = world_domains(world.config.kgfact, schema)
    kg = world.kg
    for domain in kg.entities:
        if domain not in domains:
            yield f"graph: domain {domain!r} is not one of {domains}"
    if len(kg.domain_of) != sum(len(names) for names in kg.entities.values()):
        yield "graph: an entity name is used twice"
    subject_relation: set[tuple[str, str]] = set()
    relation_object: set[tuple[str, str]] = set()
    subject_pair: set[tuple[str, str]] = set()
    for s, r, o in kg.facts:
        rel = schema.relations.get(r)
        if rel is None:
            yield f"graph: edge {s!r} -> {o!r} has unknown relation {r!r}"
            continue
        pair = (kg.domain_of.get(s), kg.domain_of.get(o))
        if pair != (rel.source, rel.target):
            yield f"graph: relation {r!r} links {pair[0]} -> {pair[1]}, expected {rel.source} -> {rel.target}"
        for seen, key, what in (
            (subject_relation, (s, r), "two answers for (subject, relation)"),
            (relation_object, (r, o), "two subjects for (relation, object)"),
            (subject_pair, (s, rel.target), "two facts for one subject and domain pair"),
        ):
            if key in seen:
                yield f"graph: {what} {key!r}"
            seen.add(key)
    expected = len(domains) * (len(domains) - 1) // 2 * world.config.kgfact.entities_per_domain
    if len(kg.facts) != expected:
        yield f"graph: {len(kg.facts)} facts, expected {expected} (one per subject and pair)"


def _record_violations(name: str, record: dict) -> Iterator[str]:
    where = f"{name} {record.get('id')!r}"
    if tuple(record) != RECORD_KEYS:
        yield f"{where}: keys {list(record)} differ from {list(RECORD_KEYS)}"
        return
    if extract_boxed(str(record["target"])) != record["answer"]:
        yield f"{where}: the target's last \\boxed{{}} is not the answer {record['answer']!r}"


def _kgfact_violations(
    world: World,
    name: str,
    records: list[dict],
    lookup: dict[tuple[str, str], str],
    statements: Callable[[], set[str]],
) -> Iterator[str]:
    schema = load_schema()
    questions: set[str] = set()
    for record in records:
        where = f"{name} {record['id']!r}"
        meta = record["meta"]
        if record["prompt"] in questions and record["context"] is None:
            yield f"{where}: the same question appears twice"
        questions.add(record["prompt"])
        if name == "kgfact/twohop":
            a, (r1, r2) = meta["path"][0], meta["relations"]
            middle = lookup.get((a, r1))
            answer = lookup.get((middle, r2)) if middle is not None else None
            if middle is not None and answer is not None:
                steps = [
                    schema.relations[r1].state(a, middle),
                    schema.relations[r2].state(middle, answer),
                ]
                if record["target"] != fact_target(steps, answer, world.config.kgfact.target):
                    yield f"{where}: target differs from the graph's statements"
        else:
            answer = lookup.get((meta["subject"], meta["relation"]))
            expected = fact_target(
                [schema.relations[meta["relation"]].state(meta["subject"], answer or "")],
                record["answer"],
                world.config.kgfact.target,
            )
            if answer is not None and record["target"] != expected:
                yield f"{where}: target differs from the graph's statement"
        if answer != record["answer"]:
            graph = "the retrieval KB" if name == "kgfact/retrieval" else "the graph"
            yield f"{where}: answer {record['answer']!r} but {graph} gives {answer!r}"
        if name == "kgfact/paraphrase" and meta["template"] == 0:
            yield f"{where}: paraphrase uses the training question template"
        if name == "kgfact/retrieval":
            yield from _context_violations(world, where, record, statements())


def _context_violations(
    world: World, where: str, record: dict, statements: set[str]
) -> Iterator[str]:
    lines = str(record["context"] or "").split("\n")
    if lines[0] != RETRIEVAL_HEADER:
        yield f"{where}: context does not start with {RETRIEVAL_HEADER!r}"
        return
    items = [line.removeprefix("- ") for line in lines[1:]]
    size = world.config.kgfact.retrieval_context_size
    if len(items) != size:
        yield f"{where}: context holds {len(items)} statements, expected {size}"
    if len(set(items)) != len(items):
        yield f"{where}: context repeats a statement"
    meta = record["meta"]
    gold = load_schema().relations[meta["relation"]].state(meta["subject"], record["answer"])
    if gold not in items:
        yield f"{where}: the gold fact is missing from the context"
    for item in items:
        if item not in statements:
            yield f"{where}: context statement {item!r} is not a fact of the retrieval KB"
            break


def _retrieval_violations(world: World, records: list[dict]) -> Iterator[str]:
    """Retrieval records ask about facts of the retrieval KB (rebuilt from the config), name
    that KB, list their context as its triples, and share no entity with the training world."""
    schema = load_schema()
    kb = retrieval_kb(world.config.kgfact, world.config.seed)
    lookup = {(s, r): o for s, r, o in kb.facts}
    statements = {schema.relations[r].state(s, o) for s, r, o in kb.facts}
    yield from _kgfact_violations(world, "kgfact/retrieval", records, lookup, lambda: statements)
    trained = world.kg.domain_of
    for record in records:
        where, meta = f"kgfact/retrieval {record['id']!r}", record["meta"]
        if meta.get("kb") != "retrieval":
            yield f"{where}: meta.kb is {meta.get('kb')!r}, expected 'retrieval'"
        triples = meta.get("context_facts") or []
        lines = [f"- {schema.relations[r].state(s, o)}" for s, r, o in triples]
        if "\n".join([RETRIEVAL_HEADER, *lines]) != record["context"]:
            yield f"{where}: meta.context_facts do not spell the context"
        entities = {meta["subject"], meta["object"], *(e for s, _, o in triples for e in (s, o))}
        if not entities.isdisjoint(trained):
            yield f"{where}: names an entity of the training world: {sorted(entities & trained.keys())[0]!r}"


def check_world(world: World) -> list[str]:
    """Every violated invariant, in a stable order (empty when the world is sound)."""
    problems = list(_graph_violations(world))
    # Built once for all KGFact splits; the statement set only if a retrieval split is checked.
    lookup = {(s, r): o for s, r, o in world.kg.facts}
    schema = load_schema()
    statements = cache(lambda: {schema.relations[r].state(s, o) for (s, r), o in lookup.items()})
    ids: set[object] = set()
    for name, records in world.splits.items():
        for record in records:
            problems.extend(_record_violations(name, record))
            if record.get("id") in ids:
                problems.append(f"{name}: duplicate id {record.get('id')!r}")
            ids.add(record.get("id"))
        if problems:
            continue
        if name == "kgfact/retrieval":  # about the retrieval KB's facts, not the world's
            problems.extend(_retrieval_violations(world, records))
        elif name.startswith("kgfact/"):
            problems.extend(_kgfact_violations(world, name, records, lookup, statements))
        elif name.startswith("edit/"):
            continue  # checked together below: every edit split needs edit/train
        else:
            for record in records:
                if recompute_answer(record) != record["answer"]:
                    problems.append(f"{name} {record['id']!r}: answer does not match the operation")
    if not problems and any(name.startswith("edit/") for name in world.splits):
        problems.extend(_edit_violations(world, lookup))
    return problems


def _edit_violations(world: World, lookup: dict[tuple[str, str], str]) -> Iterator[str]:
    """Edits revise real facts within their domain, keep the world's functions, and every
    paraphrase / multi-hop / locality answer is the one the (edited or original) graph gives."""
    schema = load_schema()
    domain_of = world.kg.domain_of
    edited: dict[tuple[str, str], str] = {}
    train = world.splits.get("edit/train")
    if train is None:
        yield "edit: the edit splits need edit/train"
        return
    for record in train:
        where = f"edit/train {record['id']!r}"
        meta, new = record["meta"], record["answer"]
        key = (meta["subject"], meta["relation"])
        old = lookup.get(key)
        if old is None or old != meta["old_answer"]:
            yield f"{where}: old answer {meta['old_answer']!r} but the graph gives {old!r}"
            continue
        if new == old or domain_of.get(new) != domain_of[old]:
            yield f"{where}: new object {new!r} is not another {domain_of[old]} entity"
        if key in edited:
            yield f"{where}: ({key[0]!r}, {key[1]!r}) is edited twice"
        edited[key] = new
        rel = schema.relations[meta["relation"]]
        if record["target"] != fact_target(
            [rel.state(meta["subject"], new)], new, world.config.kgfact.target
        ):
            yield f"{where}: target differs from the edited statement"
        if meta.get("rewrite") != rewrite_request(rel, meta["subject"], new, old):
            yield f"{where}: meta.rewrite differs from the edit"
    after = {**lookup, **edited}
    subjects: dict[tuple[str, str], str] = {}
    for (s, r), o in after.items():
        if subjects.setdefault((r, o), s) != s:
            yield f"edit: two subjects for (relation, object) {(r, o)!r} in the edited world"

    def walk(world_facts: dict[tuple[str, str], str], start: str, relations: list[str]):
        entity: str | None = start
        for relation in relations:
            entity = world_facts.get((entity, relation)) if entity is not None else None
        return entity

    ids = {record["id"] for record in train}
    for record in world.splits.get("edit/paraphrase", []):
        where, meta = f"edit/paraphrase {record['id']!r}", record["meta"]
        key = (meta["subject"], meta["relation"])
        if key not in edited or edited[key] != record["answer"] or meta["edit_id"] not in ids:
            yield f"{where}: answer {record['answer']!r} is not that of edit {meta['edit_id']!r}"
        if meta["template"] == 0:
            yield f"{where}: paraphrase uses the training question template"
    for record in world.splits.get("edit/multihop", []):
        where, meta = f"edit/multihop {record['id']!r}", record["meta"]
        start, relations = meta["path"][0], meta["relations"]
        new, old = walk(after, start, relations), walk(lookup, start, relations)
        if new != record["answer"] or old != meta["old_answer"] or new == old:
            yield f"{where}: the graphs give {new!r} (edited) and {old!r} (original)"
        if meta["hops"] != len(relations) or not set(meta["edit_ids"]) <= ids:
            yield f"{where}: meta.hops or meta.edit_ids do not match the chain"
    for record in world.splits.get("edit/locality", []):
        where, meta = f"edit/locality {record['id']!r}", record["meta"]
        key = (meta["subject"], meta["relation"])
        if key in edited or lookup.get(key) != record["answer"]:
            yield f"{where}: not an unedited fact of the world"


def world_stats(world: World) -> dict[str, dict[str, int]]:
    """Counts per split, per relation (train facts) and per domain (entities and facts)."""
    kg = world.kg
    per_domain = {domain: len(names) for domain, names in kg.entities.items()}
    as_subject: Counter[str] = Counter(kg.domain_of[s] for s, _, _ in kg.facts)
    return {
        "splits": world.counts(),
        "relations": dict(sorted(Counter(r for _, r, _ in kg.facts).items())),
        "entities_per_domain": per_domain,
        "facts_per_subject_domain": dict(as_subject),
    }
