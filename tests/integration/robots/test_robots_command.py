"""``mtrobot robots``: the catalogue as a table and as JSON, operator robots from the data dir included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

OPERATOR_ROBOT = """
from mtrobot.robots.api import Params, Robot

class Quiet(Robot[Params]):
    name = "quiet"
    description = "An operator's robot that never trades."
"""


def test_the_robots_command_lists_the_catalogue_with_parameters_as_json_and_as_a_table(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    (tmp_path / "robots").mkdir()
    (tmp_path / "robots" / "quiet.py").write_text(OPERATOR_ROBOT)
    result = cli("robots", "--json", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    robots = {r["name"]: r for r in json.loads(result.output)}
    assert set(robots) == {"ma_cross", "rsi_reversion", "breakout_atr", "grid_averaging", "quiet"}
    assert robots["quiet"]["description"] == "An operator's robot that never trades."
    fast = next(p for p in robots["ma_cross"]["parameters"] if p["name"] == "fast")
    assert (fast["type"], fast["default"], fast["minimum"], fast["maximum"]) == ("int", 10, 2, 200)
    table = cli("robots", "--data-dir", str(tmp_path))
    assert table.exit_code == 0, table.output
    assert all(name in table.output for name in robots)
