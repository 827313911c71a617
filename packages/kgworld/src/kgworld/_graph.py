"""Drawing the fictional knowledge graph.

For every ordered domain pair (earlier -> later) each source entity gets exactly one fact, so
a world has ``pairs x entities`` facts (100 for small, 525 for large). The relation is drawn
among the pair's relations and the object among the targets not yet used with that relation,
which makes both (subject, relation) -> object and (relation, object) -> subject functions:
every question has exactly one answer.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from kgworld._config import ConfigError, KGFactConfig
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


def build_graph(
    config: KGFactConfig, seed: int, progress: Callable[[str], None] | None = None
) -> nx.DiGraph:
    """The world graph: nodes carry ``domain``, edges carry ``relation``."""
    schema = load_schema()
    domains = world_domains(config, schema)
    names = entity_names(domains, config.entities_per_domain, seed)
    graph = nx.DiGraph()
    for domain in domains:
        graph.add_nodes_from(names[domain], domain=domain)
    pairs = [(s, t) for i, s in enumerate(domains) for t in domains[i + 1 :]]
    for n, (source, target) in enumerate(pairs, 1):
        relations = schema.pair_relations(source, target)
        if config.relations_per_pair > len(relations):
            raise ConfigError(
                f"kgfact.relations_per_pair={config.relations_per_pair} but the pair "
                f"{source} -> {target} has only {len(relations)} authored relations"
            )
        relations = relations[: config.relations_per_pair]
        rng = derived_rng(seed, "edges", source, target)
        subjects = list(names[source])
        rng.shuffle(subjects)
        # One pool of unused objects per relation; swap-remove keeps each draw O(1).
        relation_names = [rel.name for rel in relations]
        pools = {name: list(names[target]) for name in relation_names}
        edges = []
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
            edges.append((subject, obj, {"relation": relation}))
        graph.add_edges_from(edges)
        if progress is not None:
            progress(f"graph: pair {n}/{len(pairs)} {source} -> {target}")
    return graph


def facts(graph: nx.DiGraph) -> list[tuple[str, str, str]]:
    """(subject, relation, object) for every edge, in the graph's (deterministic) order."""
    return [(s, data["relation"], o) for s, o, data in graph.edges(data=True)]
