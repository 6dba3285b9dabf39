"""The robot catalogue: the built-in robots, those installed packages declare, and those in a folder.

Operators add robots without touching the platform's code, in either of two ways:

- a Python file in the robots folder (``DATA_DIR/robots/*.py`` by default): every :class:`Robot`
  subclass defined in it with a ``name`` is added;
- an installed package declaring an entry point in the ``mtrobot.robots`` group whose value is a
  :class:`Robot` subclass (``[project.entry-points."mtrobot.robots"] my_robot = "pkg.module:MyRobot"``).

A robot that cannot be loaded (an import error, a taken name, parameters without defaults) is left out and
reported in :attr:`Catalogue.problems`; it never takes the catalogue down. Built-in names cannot be taken.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError

from mtrobot.hub.schemas import ROBOT_NAME_PATTERN
from mtrobot.logging import get_logger
from mtrobot.robots.api import Params, Robot
from mtrobot.robots.builtin import BUILTIN

log = get_logger(__name__)

ENTRY_POINT_GROUP = "mtrobot.robots"
FOLDER_MODULE_PREFIX = "mtrobot_user_robots"
_NAME_RE = re.compile(ROBOT_NAME_PATTERN)

ParamType = Literal["int", "float", "bool", "choice", "text"]


def robots_folder(data_dir: Path) -> Path:
    """Where operators drop robot files: ``DATA_DIR/robots``."""
    return data_dir / "robots"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One declared parameter, as the catalogue shows it."""

    name: str
    type: ParamType
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[Any, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class RobotInfo:
    name: str
    description: str
    details: str
    """The robot class's docstring: when exactly it trades."""
    source: str
    """``builtin``, ``entry point NAME`` or ``file PATH``."""
    parameters: tuple[ParamSpec, ...]


class ParamsRefused(Exception):
    """Parameters that do not fit a robot's declaration; ``errors`` are ``(field, message)`` pairs with the
    parameter's name as the field (empty for a rule across several parameters)."""

    def __init__(
        self, robot: str, errors: list[tuple[str, str]], raw: list[dict[str, Any]] | None = None
    ) -> None:
        self.robot = robot
        self.errors = errors
        self.raw = raw or []
        """pydantic's own error records (``loc`` relative to the parameters), for callers that word them."""
        detail = "; ".join(f"{field or 'parameters'}: {message}" for field, message in errors)
        super().__init__(f"{robot}: {detail}")


def param_specs(model: type[Params]) -> tuple[ParamSpec, ...]:
    specs = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        choices: tuple[Any, ...] = ()
        kind: ParamType
        if get_origin(annotation) is Literal:
            kind, choices = "choice", get_args(annotation)
        elif annotation is bool:
            kind = "bool"
        elif annotation is int:
            kind = "int"
        elif annotation is float:
            kind = "float"
        else:
            kind = "text"
        bounds: dict[str, Any] = {}
        for rule in info.metadata:
            if isinstance(rule, Ge):
                bounds["minimum"] = rule.ge
            elif isinstance(rule, Gt):
                bounds["minimum"], bounds["exclusive_minimum"] = rule.gt, True
            elif isinstance(rule, Le):
                bounds["maximum"] = rule.le
            elif isinstance(rule, Lt):
                bounds["maximum"], bounds["exclusive_maximum"] = rule.lt, True
        specs.append(
            ParamSpec(
                name, kind, info.get_default(), choices=choices, description=info.description or "", **bounds
            )
        )
    return tuple(specs)


def validate_params(robot: type[Robot[Any]], params: Mapping[str, Any]) -> Params:
    """``params`` checked against ``robot``'s declaration (missing ones take their defaults)."""
    try:
        return robot.params_model.model_validate(dict(params))
    except ValidationError as exc:
        found = exc.errors(include_url=False, include_context=True)
        errors = [(".".join(str(p) for p in e["loc"]), _sentence(e["msg"])) for e in found]
        raise ParamsRefused(robot.name, errors, [dict(e) for e in found]) from None


def _sentence(message: str) -> str:
    return message.removeprefix("Value error, ")


def parse_assignments(robot: type[Robot[Any]], assignments: Iterable[str]) -> dict[str, Any]:
    """``["fast=10", "direction=long"]`` from a command line, each text read as its parameter's type."""
    specs = {spec.name: spec for spec in param_specs(robot.params_model)}
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamsRefused(robot.name, [(assignment, "write a parameter as name=value")])
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise ParamsRefused(
                robot.name, [(name, f"{robot.name} has no parameter {name!r} (it has: {known})")]
            )
        values[name] = parse_value(spec, text.strip())
    return values


def parse_value(spec: ParamSpec, text: str) -> Any:
    try:
        if spec.type == "int":
            return int(text)
        if spec.type == "float":
            return float(text)
        if spec.type == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        if spec.type == "choice":
            for choice in spec.choices:
                if str(choice) == text:
                    return choice
            raise ValueError(text)
    except ValueError:
        wanted = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
            spec.type, "one of " + ", ".join(str(c) for c in spec.choices)
        )
        raise ParamsRefused("parameters", [(spec.name, f"{text!r} is not {wanted}")]) from None
    return text


class Catalogue:
    """Robots by name. Build it with :meth:`load`; ``Catalogue()`` holds the built-ins only."""

    def __init__(self, extra: Iterable[tuple[type[Robot[Any]], str]] = ()) -> None:
        self._robots: dict[str, tuple[type[Robot[Any]], str]] = {}
        self.problems: list[str] = []
        for robot in BUILTIN:
            self.add(robot, "builtin")
        for robot, source in extra:
            self.add(robot, source)

    @classmethod
    def load(cls, folder: Path | None = None, *, group: str = ENTRY_POINT_GROUP) -> Catalogue:
        """The built-ins, then robots from entry points of ``group``, then from ``folder`` if it exists."""
        catalogue = cls()
        for ep in entry_points(group=group):
            try:
                catalogue.add(ep.load(), f"entry point {ep.name}")
            except Exception as exc:  # one broken plugin must not take the catalogue down
                catalogue._problem(f"entry point {ep.name}: {type(exc).__name__}: {exc}")
        if folder is not None and folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_"):
                    catalogue._load_file(path)
        return catalogue

    def _load_file(self, path: Path) -> None:
        module_name = f"{FOLDER_MODULE_PREFIX}.{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError("not a Python module")
            sys.modules.setdefault(FOLDER_MODULE_PREFIX, types.ModuleType(FOLDER_MODULE_PREFIX))
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            self._problem(f"file {path}: {type(exc).__name__}: {exc}")
            return
        found = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Robot)
            and value.__module__ == module_name
            and value.name
        ]
        if not found:
            self._problem(f"file {path}: defines no Robot subclass with a name")
        for robot in found:
            self.add(robot, f"file {path}")

    def add(self, robot: object, source: str) -> bool:
        """Add ``robot`` unless it is not a proper robot or its name is taken (then a problem is noted)."""
        reason = _unfit(robot)
        if reason is not None:
            self._problem(f"{source}: {reason}")
            return False
        assert isinstance(robot, type) and issubclass(robot, Robot)
        taken = self._robots.get(robot.name)
        if taken is not None:
            self._problem(f"{source}: robot {robot.name!r} ignored, the name is taken ({taken[1]})")
            return False
        self._robots[robot.name] = (robot, source)
        return True

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        log.error("robot not loaded", problem=text)

    def get(self, name: str) -> type[Robot[Any]] | None:
        entry = self._robots.get(name)
        return entry[0] if entry else None

    def names(self) -> list[str]:
        return sorted(self._robots)

    def infos(self) -> list[RobotInfo]:
        return [
            RobotInfo(
                robot.name,
                robot.description,
                inspect.cleandoc(robot.__doc__ or ""),
                source,
                param_specs(robot.params_model),
            )
            for robot, source in (self._robots[name] for name in self.names())
        ]

    def make(self, name: str, params: Mapping[str, Any]) -> Robot[Any]:
        """A new instance of robot ``name`` with ``params`` validated; KeyError for an unknown name."""
        robot = self.get(name)
        if robot is None:
            raise KeyError(name)
        return robot(validate_params(robot, params))


def _unfit(robot: object) -> str | None:
    if not (isinstance(robot, type) and issubclass(robot, Robot)):
        return f"{robot!r} is not a Robot subclass"
    if not _NAME_RE.fullmatch(robot.name or ""):
        return f"{robot.__name__}.name {robot.name!r} must match {ROBOT_NAME_PATTERN}"
    if not robot.description.strip():
        return f"robot {robot.name!r} has no description"
    if not (isinstance(robot.params_model, type) and issubclass(robot.params_model, Params)):
        return f"robot {robot.name!r}: params_model must be a subclass of mtrobot.robots.api.Params"
    try:
        robot.params_model()
    except ValidationError as exc:
        return f"robot {robot.name!r}: every parameter needs a valid default ({exc.errors()[0]['msg']})"
    if not isinstance(robot.history, int) or not 1 <= robot.history <= 10_000:
        return f"robot {robot.name!r}: history must be a whole number of bars between 1 and 10000"
    return None
