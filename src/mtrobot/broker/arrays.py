"""The numpy side of the terminal interface: the dtypes of ``copy_rates_*`` and ``copy_ticks_*`` results
(MT5_REFERENCE.md section 1).

Only what builds or reads such arrays imports this module (the simulator, bar readers, result copying); the
interface itself (:mod:`mtrobot.broker.terminal`) names the array types for annotations only. An agent's
order path never touches an array, so an agent does not load numpy (some 10 MB of its resident memory)
until a robot asks for bars.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

RatesArray: TypeAlias = npt.NDArray[np.void]
TicksArray: TypeAlias = npt.NDArray[np.void]

RATES_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)
"""numpy dtype of ``copy_rates_*`` results."""

TICKS_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)
"""numpy dtype of ``copy_ticks_*`` results."""

DTYPES = {"rates": RATES_DTYPE, "ticks": TICKS_DTYPE}
"""The two kinds of array by name (the simulator's wire protocol tags arrays with it)."""
