"""The authored relation schema (``data/relations.json``): domains and typed relations.

For every ordered pair of domains (earlier -> later) there are ten relations, each with a
statement template, question templates (the first is the training wording, the others are
held out for the paraphrase split) and a relative clause used to compose two-hop questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Domain:
    name: str
    label: str


@dataclass(frozen=True)
class Relation:
    name: str
    source: str
    target: str
    statement: str
    questions: tuple[str, ...]
    relative: str

    def state(self, subject: str, obj: str) -> str:
        statement = self.statement.format(subject=subject, object=obj)
        return statement[:1].upper() + statement[1:]

    def ask(self, subject: str, template: int = 0) -> str:
        # A template may open with {subject}; a two-hop subject is a lowercase "the ..." phrase.
        question = self.questions[template].format(subject=subject)
        return question[:1].upper() + question[1:]

    def describe(self, subject: str) -> str:
        return self.relative.format(subject=subject)


@dataclass(frozen=True)
class Schema:
    domains: tuple[Domain, ...]
    relations: dict[str, Relation]

    def pair_relations(self, source: str, target: str) -> list[Relation]:
        return [r for r in self.relations.values() if r.source == source and r.target == target]


@cache
def load_schema() -> Schema:
    raw = json.loads(resources.files("kgworld").joinpath("data/relations.json").read_text("utf-8"))
    domains = tuple(Domain(d["name"], d["label"]) for d in raw["domains"])
    relations = {
        r["name"]: Relation(
            name=r["name"],
            source=r["source"],
            target=r["target"],
            statement=r["statement"],
            questions=tuple(r["questions"]),
            relative=r["relative"],
        )
        for r in raw["relations"]
    }
    return Schema(domains, relations)
