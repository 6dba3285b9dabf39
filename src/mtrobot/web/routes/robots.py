"""The robot catalogue: every robot a portfolio can use, with its parameters, defaults and ranges."""

from __future__ import annotations

from fastapi import APIRouter

from mtrobot.web.deps import CallerDep, StateDep
from mtrobot.web.errors import problem_responses
from mtrobot.web.schemas import ParameterPublic, RobotPublic

router = APIRouter(prefix="/robots", tags=["robots"])


@router.get("", responses=problem_responses(401))
def list_robots(_caller: CallerDep, state: StateDep) -> list[RobotPublic]:
    return [
        RobotPublic(
            name=info.name,
            description=info.description,
            details=info.details,
            source=info.source,
            parameters=[
                ParameterPublic(
                    name=p.name,
                    type=p.type,
                    default=p.default,
                    minimum=p.minimum,
                    maximum=p.maximum,
                    exclusive_minimum=p.exclusive_minimum,
                    exclusive_maximum=p.exclusive_maximum,
                    choices=list(p.choices),
                    description=p.description,
                )
                for p in info.parameters
            ],
        )
        for info in state.catalogue.infos()
    ]
