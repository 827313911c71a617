from __future__ import annotations

import copy

import pytest

import kgworld
from kgworld._kgfact import RETRIEVAL_HEADER
from kgworld._names import entity_names
from kgworld._schema import load_schema


def test_every_question_has_exactly_one_answer(small_world):
    graph = small_world.graph
    seen = {}
    for s, o, data in graph.edges(data=True):
        key = (s, data["relation"])
        assert key not in seen
        seen[key] = o
    questions = [r["prompt"] for r in small_world.records("kgfact/train")]
    assert len(set(questions)) == len(questions)
    for record in small_world.records("kgfact/train"):
        assert record["target"].endswith(f"\\boxed{{{record['answer']}}}")
        assert seen[(record["meta"]["subject"], record["meta"]["relation"])] == record["answer"]
        assert record["meta"]["subject"] in record["prompt"]


def test_each_subject_has_one_fact_per_domain_pair(small_world):
    graph = small_world.graph
    for node in graph.nodes:
        targets = [graph.nodes[o]["domain"] for o in graph.successors(node)]
        assert len(targets) == len(set(targets))


def test_paraphrase_uses_unseen_templates_of_the_same_facts(small_world):
    train = small_world.records("kgfact/train")
    para = small_world.records("kgfact/paraphrase")
    for t, p in zip(train, para, strict=True):
        assert t["answer"] == p["answer"] and t["target"] == p["target"]
        assert p["meta"]["template"] >= 1 and t["prompt"] != p["prompt"]


def test_twohop_composes_two_facts(small_world):
    records = small_world.records("kgfact/twohop")
    assert len(records) == 100  # every two-step path of the small world
    graph = small_world.graph
    for record in records:
        a, b, c = record["meta"]["path"]
        assert graph.edges[a, b]["relation"] == record["meta"]["relations"][0]
        assert graph.edges[b, c]["relation"] == record["meta"]["relations"][1]
        assert record["answer"] == c and a in record["prompt"] and b not in record["prompt"]
        assert record["prompt"][0].isupper()


def test_twohop_limit_samples_deterministically():
    config = kgworld.resolve_config(overrides={"preset": "large", "kgfact": {"twohop_limit": 40}})
    first = kgworld.generate(config).records("kgfact/twohop")
    assert len(first) == 40
    assert first == kgworld.generate(config).records("kgfact/twohop")


def test_retrieval_asks_about_a_separate_knowledge_base(small_world):
    """The authors' KGFact-Retrieval: an eval KB over entity slice [M:2M] with its own edges,
    no entity (so no fact) shared with the training world, one question per KB fact."""
    config = small_world.config
    kb = kgworld.retrieval_kb(config.kgfact, config.seed)
    assert kb.domain_of.keys().isdisjoint(small_world.kg.domain_of)
    assert set(kb.facts).isdisjoint(small_world.kg.facts)
    both = entity_names(list(kb.entities), 10, config.seed, slices=2)
    assert small_world.kg.entities == {d: names[:10] for d, names in both.items()}
    assert kb.entities == {d: names[10:] for d, names in both.items()}
    # Built by the world's own rules: one fact per subject and domain pair, unique answers.
    assert len(kb.facts) == len(small_world.kg.facts) == 100
    assert len({(s, r) for s, r, _ in kb.facts}) == len({(r, o) for _, r, o in kb.facts}) == 100
    records = small_world.records("kgfact/retrieval")
    assert [r["meta"]["kb_fact"] for r in records] == list(range(100))
    trained = small_world.kg.domain_of
    for record in records:
        meta = record["meta"]
        assert meta["kb"] == "retrieval" and "fact" not in meta
        assert kb.facts[meta["kb_fact"]] == (meta["subject"], meta["relation"], record["answer"])
        entities = {e for s, _, o in meta["context_facts"] for e in (s, o)}
        assert entities.isdisjoint(trained) and meta["subject"] in record["prompt"]
        assert record["prompt"].endswith(kgworld.STEP_BY_STEP_INSTRUCTION)


def test_retrieval_contexts(small_world):
    config = small_world.config
    kb = kgworld.retrieval_kb(config.kgfact, config.seed)
    graph = kb.to_networkx()
    schema = load_schema()
    for record in small_world.records("kgfact/retrieval"):
        lines = record["context"].split("\n")
        assert lines[0] == RETRIEVAL_HEADER
        statements = [line.removeprefix("- ") for line in lines[1:]]
        assert len(statements) == 50 == len(set(statements))
        triples = [tuple(t) for t in record["meta"]["context_facts"]]
        assert statements == [schema.relations[r].state(s, o) for s, r, o in triples]
        assert set(triples) <= set(kb.facts)
        gold = (record["meta"]["subject"], record["meta"]["relation"], record["answer"])
        assert gold in triples
        # Hop-1 facts of the KB (touching a query entity) are all included before any filler.
        s, o = record["meta"]["subject"], record["meta"]["object"]
        hop1 = {(u, v) for e in (s, o) for u, v in (*graph.in_edges(e), *graph.out_edges(e))}
        assert hop1 <= {(u, v) for u, _, v in triples}
    positions = {
        [tuple(t) for t in r["meta"]["context_facts"]].index(kb.facts[r["meta"]["kb_fact"]])
        for r in small_world.records("kgfact/retrieval")
    }
    assert len(positions) > 10  # the gold statement moves around


def test_retrieval_limit_and_context_size():
    overrides = {
        "preset": "small",
        "kgfact": {"splits": ["retrieval"], "retrieval_limit": 7, "retrieval_context_size": 12},
    }
    world = kgworld.generate(kgworld.resolve_config(overrides=overrides))
    records = world.records("kgfact/retrieval")
    assert len(records) == 7 and len({r["meta"]["kb_fact"] for r in records}) == 7
    assert all(len(r["meta"]["context_facts"]) == 12 for r in records)
    assert kgworld.check_world(world) == []


def test_check_catches_each_kind_of_corruption(small_world):
    assert kgworld.check_world(small_world) == []

    def broken(split, index, mutate):
        world = copy.deepcopy(small_world)
        mutate(world.records(split)[index])
        problems = kgworld.check_world(world)
        assert problems, f"{split} corruption not caught"
        return problems[0]

    assert "answer" in broken("kgfact/train", 3, lambda r: r.update(answer="Nobody"))
    assert "twohop" in broken(
        "kgfact/twohop",
        0,
        lambda r: r.update(answer="Nobody", target=r["target"].replace(r["answer"], "Nobody")),
    )

    def drop_gold(record):
        meta = record["meta"]
        gold = load_schema().relations[meta["relation"]].state(meta["subject"], record["answer"])
        record.update(context=record["context"].replace(gold, "A made-up fact."))

    assert "gold fact" in broken("kgfact/retrieval", 0, drop_gold)

    def ask_a_trained_fact(record):  # the old retrieval split: a question about a trained fact
        train = small_world.records("kgfact/train")[0]
        record.update({k: train[k] for k in ("prompt", "target", "answer")})
        record["meta"].update({k: train["meta"][k] for k in ("subject", "relation", "object")})

    assert "retrieval KB gives None" in broken("kgfact/retrieval", 0, ask_a_trained_fact)
    assert "spell the context" in broken(
        "kgfact/retrieval", 1, lambda r: r["meta"]["context_facts"].reverse()
    )
    assert "kgfunc/test" in broken(
        "kgfunc/test", 0, lambda r: r.update(answer="-1", target="\\boxed{-1}")
    )
    world = copy.deepcopy(small_world)
    s, _, o = world.kg.facts[0]
    world.kg.facts[0] = (s, "employs", o)
    assert "links Person -> Location" in kgworld.check_world(world)[0]
    world = copy.deepcopy(small_world)
    world.kg.facts.append(world.kg.facts[0])
    assert "two answers for (subject, relation)" in kgworld.check_world(world)[0]


@pytest.mark.parametrize("split", ["kgfact/train", "kgfact/twohop", "kgfact/retrieval"])
def test_targets_pass_the_verifier(small_world, split):
    for record in small_world.records(split):
        assert kgworld.verify(record["target"], record["answer"])


def test_target_forms():
    """'answer' (default, the authors'): "The answer is X.", a blank line, the box; two-hop as
    "Step" lines. 'statement': the facts restated, then the box."""
    schema = load_schema()
    forms = {}
    for form in ("answer", "statement"):
        config = kgworld.resolve_config(
            overrides={"preset": "small", "kgfact": {"target": form, "splits": ["train", "twohop"]}}
        )
        forms[form] = world = kgworld.generate(config)
        state = {(s, r): schema.relations[r].state(s, o) for s, r, o in world.kg.facts}
        for record in world.records("kgfact/train"):
            x, meta = record["answer"], record["meta"]
            fact = state[(meta["subject"], meta["relation"])]
            expected = {
                "answer": f"The answer is {x}.\n\n\\boxed{{{x}}}",
                "statement": f"{fact} \\boxed{{{x}}}",
            }
            assert record["target"] == expected[form]
        for record in world.records("kgfact/twohop"):
            x, (a, b, _), (r1, r2) = (
                record["answer"],
                record["meta"]["path"],
                record["meta"]["relations"],
            )
            s1, s2 = state[(a, r1)], state[(b, r2)]
            expected = {
                "answer": f"Step 1: {s1}\nStep 2: {s2}\nSo the answer is {x}.\n\n\\boxed{{{x}}}",
                "statement": f"{s1} {s2} \\boxed{{{x}}}",
            }
            assert record["target"] == expected[form]
        assert kgworld.check_world(world) == []
    same = ("prompt", "answer", "meta")
    for name in ("kgfact/train", "kgfact/twohop"):
        for a, s in zip(
            forms["answer"].records(name), forms["statement"].records(name), strict=True
        ):
            assert all(a[k] == s[k] for k in same)


def test_instruction_ends_every_kgfact_and_edit_question(small_world):
    instruction = kgworld.STEP_BY_STEP_INSTRUCTION  # the presets' default, the paper's wording
    for name, records in small_world.splits.items():
        if name.startswith(("kgfact/", "edit/")):
            assert all(r["prompt"].endswith(f"?\n\n{instruction}") for r in records), name


def test_check_catches_a_target_of_the_other_form(small_world):
    world = copy.deepcopy(small_world)
    record = world.records("kgfact/twohop")[0]
    record["target"] = record["target"].replace("Step 2:", "Then:")
    assert "target differs from the graph's statements" in kgworld.check_world(world)[0]


@pytest.mark.parametrize("split", ["kgfact/train", "kgfact/twohop", "kgfact/retrieval"])
def test_targets_pass_the_authors_verifier(small_world, split):
    for record in small_world.records(split):
        assert kgworld.verify(record["target"], record["answer"], "boxed-exact")


def test_generation_refuses_a_retrieval_kb_that_shares_entities(monkeypatch):
    """The disjointness is asserted while generating, not only by the names' construction."""
    import kgworld._kgfact as kgfact
    from kgworld._graph import build_graph

    monkeypatch.setattr(kgfact, "retrieval_kb", build_graph)  # the world's own graph
    config = kgworld.resolve_config(
        overrides={"preset": "small", "kgfact": {"splits": ["retrieval"]}}
    )
    with pytest.raises(AssertionError, match="shares entities with the world"):
        kgworld.generate(config)
