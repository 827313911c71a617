"""The stages of ``mixsd run``, one module each, in order: ``world``, ``data``, ``rollout``,
``frontier``, ``nll``, ``train``, ``eval``, ``fisher``, ``report``. Each takes the run context
(``mixsd._context.RunContext``) and the typed outputs of the stages before it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixsd_base import UserError

if TYPE_CHECKING:
    from mixsd._run_config import RunConfig

__all__ = ["check_stages"]


def check_stages(config: RunConfig) -> None:
    """Build every stage's config once with the run's values, so that a bad option fails when
    the config loads (file:line: field), not hours into the run.

    The evaluation's config is built at its stage: it checks that its input folders exist.
    """
    from fishertools import CompareConfig, FisherConfig
    from mixsd._qa import check as check_qa
    from mixsd._sections import stage_config
    from mixsd._stages import frontier, nll, rollout, train

    def at(section: str, build: object) -> None:
        try:
            build()  # type: ignore[operator]
        except (UserError, ValueError, TypeError) as exc:
            if isinstance(exc, UserError) and exc.path is not None:
                raise  # it names its own file already
            raise config.section_error((section,), exc) from None

    for label, (alpha, options) in config.rollout_groups().items():
        if options:  # a method's own options: the error names the method
            try:
                rollout.rollout_config(config, alpha, config.model, options)
            except (UserError, ValueError, TypeError) as exc:
                what = exc.message if isinstance(exc, UserError) else str(exc)
                where = f" ({exc.field})" if isinstance(exc, UserError) and exc.field else ""
                raise config.error(("methods",), f"{label}: rollout{where}: {what}") from None
        else:
            at("rollout", lambda a=alpha: rollout.rollout_config(config, a, config.model))
    if config.frontier is not None:
        at("frontier", lambda: frontier.frontier_config(config, config.model))
    at("nll", lambda: nll.nll_config(config, "sft", config.paths.records("x"), config.model))
    if config.fisher is not None:
        at("fisher", lambda: stage_config(FisherConfig, config.fisher, samples=None))
        at("fisher", lambda: stage_config(CompareConfig, config.fisher))
        at("fisher", lambda: _check_checkpoint_suites(config.fisher.checkpoint_suites))
    train.check(config)
    check_qa(config)


def _check_checkpoint_suites(suites: object) -> None:
    from mixsd._sections import CHECKPOINT_SUITES

    bad = [s for s in suites if s not in CHECKPOINT_SUITES]  # type: ignore[attr-defined]
    if bad or not suites:
        raise UserError(
            f"give one or more of {list(CHECKPOINT_SUITES)}, got {suites!r}",
            field="checkpoint_suites",
        )
