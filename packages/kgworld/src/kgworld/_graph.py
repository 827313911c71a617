"""Drawing the fictional knowledge graph.

For every ordered domain pair (earlier -> later) each source entity gets exactly one fact, so
a world has ``pairs x entities`` facts (100 for small, 525 for large). The relation is drawn
among the pair's relations and the object among the targets not yet used with that relation,
which makes both (subject, relation) -> object and (relation, object) -> subject functions:
every question has exactly one answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import networkx as nx

from kgworld._config import ConfigError, KGFactConfig, KGWorldError
from kgworld._names import entity_names
from kgworld._rng import derived_rng, pick
from kgworld._schema import Schema, load_schema


def world_domains(config: KGFactConfig, schema: Schema | None = None) -> list[str]:
    schema = schema or load_schema()
    if config.domains > len(schema.domains):
        known = ", ".join(d.name for d in schema.domains)
        raise ConfigError(
            f"kgfact.domains={config.domains} but the relation schema covers "
            f"{len(schema.domains)} domains ({known})"
        )
    return [d.name for d in schema.domains[: config.domains]]


@dataclass
class FactGraph:
    """The world's knowledge graph as plain lists: the fast form every split is built from.

    ``to_networkx()`` gives the same graph as a ``networkx.DiGraph`` (nodes carry ``domain``,
    edges ``relation``); ``node_link()`` is the ``graph.json`` payload, networkx's node-link
    format, written straight from the lists so a million-fact world need not be built twice.
    """

    entities: dict[str, list[str]]
    facts: list[tuple[str, str, str]]

    @cached_property
    def domain_of(self) -> dict[str, str]:
        return {name: domain for domain, names in self.entities.items() for name in names}

    def to_networkx(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        for domain, names in self.entities.items():
            graph.add_nodes_from(names, domain=domain)
        graph.add_edges_from((s, o, {"relation": r}) for s, r, o in self.facts)
        return graph

    def node_link(self) -> dict[str, Any]:
        return {
            "directed": True,
            "multigraph": False,
            "graph": {},
            "nodes": [{"id": n, "domain": d} for d, names in self.entities.items() for n in names],
            "edges": [{"source": s, "target": o, "relation": r} for s, r, o in self.facts],
        }

    @classmethod
    def from_node_link(cls, data: dict[str, Any], where: str) -> FactGraph:
        try:
            entities: dict[str, list[str]] = {}
            for node in data["nodes"]:
                entities.setdefault(node["domain"], []).append(node["id"])
            facts = [(e["source"], e["relation"], e["target"]) for e in data["edges"]]
        except (KeyError, TypeError) as exc:
            raise KGWorldError(f"{where}: not a kgworld node-link graph (missing {exc})") from exc
        return cls(entities, facts)


def build_graph(
    config: KGFactConfig,
    seed: int,
    progress: Callable[[str], None] | None = None,
    *,
    names: dict[str, list[str]] | None = None,
    stream: tuple[str, ...] = ("edges",),
) -> FactGraph:
    """Draw the world: invented entities per domain, then one fact per subject and domain pair.

    ``names`` (domain -> entities) replaces the world's own invented names, and ``stream``
    labels the random streams the edges are drawn from: :func:`retrieval_kb` draws a second
    knowledge base this way, with the same rules.
    """
    schema = load_schema()
    domains = world_domains(config, schema)
    if names is None:
        names = entity_names(domains, config.entities_per_domain, seed)
    facts: list[tuple[str, str, str]] = []
    pairs = [(s, t) for i, s in enumerate(domains) for t in domains[i + 1 :]]
    for n, (source, target) in enumerate(pairs, 1):
        relations = schema.pair_relations(source, target)
        if config.relations_per_pair > len(relations):
            raise ConfigError(
                f"kgfact.relations_per_pair={config.relations_per_pair} but the pair "
                f"{source} -> {target} has only {len(relations)} authored relations"
            )
        relations = relations[: config.relations_per_pair]
        rng = derived_rng(seed, *stream, source, target)
        subjects = list(names[source])
        rng.shuffle(subjects)
        # One pool of unused objects per relation; swap-remove keeps each draw O(1).
        relation_names = [rel.name for rel in relations]
        pools = {name: list(names[target]) for name in relation_names}
        for subject in subjects:
            relation = pick(rng, relation_names)
            pool = pools[relation]
            if not pool:  # only when one relation has taken every object (e.g. one relation)
                relation = rng.choice([name for name, p in pools.items() if p])
                pool = pools[relation]
            j = int(rng.random() * len(pool))
            obj = pool[j]
            pool[j] = pool[-1]
            pool.pop()
            facts.append((subject, relation, obj))
        if progress is not None:
            progress(f"graph: pair {n}/{len(pairs)} {source} -> {target}")
    return FactGraph(names, facts)


def retrieval_kb(config: KGFactConfig, seed: int) -> FactGraph:
    """The retrieval split's knowledge base, disjoint from the world's own.

    As the authors' evaluation KB: the next ``entities_per_domain`` names of every domain (slice
    [M:2M] of 2M names, whose first M are the world's), with edges drawn by the world's rules
    from other random streams (the authors use seed + 1000), so no entity, and hence no fact,
    is shared with the facts a model trains on.
    """
    per_domain = config.entities_per_domain
    both = entity_names(world_domains(config), per_domain, seed, slices=2)
    names = {domain: found[per_domain:] for domain, found in both.items()}
    return build_graph(config, seed, names=names, stream=("retrieval-kb", "edges"))
