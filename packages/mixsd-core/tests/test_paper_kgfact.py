"""The paper's KGFact forms reach the rollout: the expert prompt quotes the authors' target, and
'auto' verifies KGFact with their exact match of the last box."""

from __future__ import annotations

import pytest

import kgworld
from mixsd_core import AUTO_VERIFIERS, PromptConfig, render_prompts


def test_paper_expert_prompt_quotes_the_paper_target(small_world, tiny_tokenizer) -> None:
    for name in ("kgfact/train", "kgfact/twohop"):
        record = small_world.records(name)[0]
        x = record["answer"]
        assert record["target"].endswith(f"So the answer is {x}.\n\n\\boxed{{{x}}}") or (
            record["target"] == f"The answer is {x}.\n\n\\boxed{{{x}}}"
        )
        _, expert = render_prompts(tiny_tokenizer, record, PromptConfig(style="paper"))
        user = expert.split("<|im_end|>")[0]
        assert f"Here is the answer:\n{record['target']}\n\nNow answer" in user
        assert user.count(kgworld.STEP_BY_STEP_INSTRUCTION) == 1  # the question's own


@pytest.mark.parametrize(
    ("reply", "passes"),
    [
        ("The answer is {x}.\n\n\\boxed{{{x}}}", True),
        ("\\boxed{{{lower}}}", False),  # the authors compare strings: no case folding
        ("It is {x}.", False),  # no box: no final-sentence fallback
    ],
)
def test_auto_verifies_kgfact_with_the_authors_rule(small_world, reply, passes) -> None:
    assert AUTO_VERIFIERS == {"kgfact": "boxed-exact", "kgfunc": "integer"}
    x = small_world.records("kgfact/train")[0]["answer"]
    verifier = kgworld.get_verifier(AUTO_VERIFIERS["kgfact"])
    assert verifier(reply.format(x=x, lower=x.lower()), x) is passes
