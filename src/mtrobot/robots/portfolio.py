"""A portfolio checked against the robot catalogue: every robot must exist and its parameters must fit
its declaration. The web refuses a portfolio with a problem (422 naming the field); the host refuses, per
allocation, whatever still does not fit when it loads one (and says so in the activity log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtrobot.hub.schemas import PortfolioConfig
from mtrobot.robots.catalogue import Catalogue, ParamsRefused, validate_params


@dataclass(frozen=True, slots=True)
class PortfolioProblem:
    field: str
    """Dotted path in the document, e.g. ``robots.0.params.fast``."""
    code: str
    """``no_such_robot`` or ``invalid_parameter``."""
    message: str
    raw: dict[str, Any] | None = None
    """For a parameter: pydantic's error record, ``loc`` the whole path (for callers that word it)."""


def check_portfolio(config: PortfolioConfig, catalogue: Catalogue) -> list[PortfolioProblem]:
    problems: list[PortfolioProblem] = []
    for index, allocation in enumerate(config.robots):
        robot = catalogue.get(allocation.robot)
        if robot is None:
            available = ", ".join(catalogue.names())
            problems.append(
                PortfolioProblem(
                    f"robots.{index}.robot",
                    "no_such_robot",
                    f"there is no robot named {allocation.robot!r}; available: {available}",
                )
            )
            continue
        try:
            validate_params(robot, allocation.params)
        except ParamsRefused as exc:
            for (name, message), raw in zip(exc.errors, exc.raw, strict=True):
                field = f"robots.{index}.params" + (f".{name}" if name else "")
                located = raw | {"loc": ("robots", index, "params", *raw["loc"])}
                problems.append(
                    PortfolioProblem(field, "invalid_parameter", f"{allocation.robot}: {message}", located)
                )
    return problems
