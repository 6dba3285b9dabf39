"""``mtrobot mt5 run SCRIPT.py [args]``: an unmodified MetaTrader5 script against the simulator.

The script runs in this process as ``__main__`` (``sys.argv`` = the script and its arguments, its folder
first on ``sys.path``) with ``MetaTrader5`` in ``sys.modules`` bound to :mod:`mtrobot.mt5`, so its
``import MetaTrader5 as mt5`` needs no package and no change. ``--replay`` feeds a symbol from an MT5 bar or
tick export on a private simulator whose clock starts at the file's first tick and runs at real speed, so
the script's ``time.sleep`` stays real time. A script that logs in to its real broker's server (which
the simulator does not have) gets the demo account instead, with a note on stderr.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import mtrobot.mt5 as module
from mtrobot.core.errors import ConfigError
from mtrobot.mt5 import target as targets
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import ServerZone, VirtualClock
from mtrobot.sim.config import default_config
from mtrobot.sim.replay import read_export

OFFICIAL_NAME = "MetaTrader5"


def replay_simulator(spec: str, seed: int | None = None) -> targets.Simulator:
    """A private simulator whose ``SYMBOL`` replays ``FILE`` (``spec`` = ``[SYMBOL=]FILE``; without the
    symbol, the file name must start with one, as MT5 names its exports: ``EURUSD_M1_2024....csv``)."""
    symbol, sep, file = spec.rpartition("=")
    path = Path(file if sep else spec).expanduser()
    config = default_config(seed if seed is not None else 42).model_copy(
        update={"history_days": targets.HISTORY_DAYS}
    )
    names = {s.name for server in config.servers for s in server.symbols}
    if not symbol:
        symbol = next(
            (n for n in sorted(names, key=len, reverse=True) if path.name.upper().startswith(n)), ""
        )
    if symbol not in names:
        raise ConfigError(f"replay: name the symbol as SYMBOL=FILE (one of {', '.join(sorted(names))})")
    first_server = config.servers[0]
    spec_of = first_server.symbol(symbol)
    assert spec_of is not None
    ticks = read_export(path, spec_of.point)
    if not ticks:
        raise ConfigError(f"replay: {path} has no prices")
    first_ms = ticks[0][0]
    offset = ServerZone(first_server.timezone).to_server_ms(first_ms) - first_ms
    broker = SimBroker(config, VirtualClock(first_ms - offset, speed=1.0))
    for server in broker.servers:
        if symbol in broker.servers[server].specs:
            broker.load_replay(server, symbol, ticks)
    sim = targets.embedded(broker)
    sim.label = f"a private simulator replaying {path.name} as {symbol}"
    return sim


def run_script(
    script: Path,
    args: Sequence[str],
    *,
    target: str | None = None,
    server: str | None = None,
    login: int | None = None,
    replay: str | None = None,
    start: datetime | None = None,
    seed: int | None = None,
    always_open: bool = False,
) -> int:
    """Run ``script`` as ``__main__``; its exit status (1 after an uncaught exception)."""
    if not script.is_file():
        raise ConfigError(f"script: {script} is not a file")
    if replay:
        simulator = replay_simulator(replay, seed)
    elif start is not None or seed is not None or always_open:
        if target not in (None, targets.EMBEDDED):
            raise ConfigError("--start, --seed and --always-open shape a private simulator: leave out --sim")
        simulator = targets.embedded(start=start, seed=seed, always_open=always_open)
    else:
        simulator = targets.resolve(target)
    module.configure(simulator=simulator, server=server, login=login, stand_in=True)
    print(f"mtrobot mt5: MetaTrader5 is {simulator.label}", file=sys.stderr)
    saved_argv, saved_path = sys.argv, list(sys.path)
    previous = sys.modules.get(OFFICIAL_NAME)
    sys.modules[OFFICIAL_NAME] = module
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.resolve().parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
        return 0
    except SystemExit as exc:
        return _exit_status(exc.code)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        module.shutdown()
        sys.argv, sys.path[:] = saved_argv, saved_path
        if previous is None:
            sys.modules.pop(OFFICIAL_NAME, None)
        else:
            sys.modules[OFFICIAL_NAME] = previous


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
