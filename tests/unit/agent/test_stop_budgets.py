"""The stop budgets nest: a clean stop never SIGKILLs a layer while the layer below is still stopping."""

from mtrobot.core.agent import AGENT_STOP_S, LAUNCHER_SUPERVISOR_GRACE_S, SUPERVISOR_AGENT_GRACE_S
from mtrobot.launcher import supervisor_part
from mtrobot.settings import Settings
from mtrobot.supervisor.service import SupervisorOptions


def test_each_layer_waits_longer_than_the_layer_below_it_takes_to_stop(tmp_path):
    assert AGENT_STOP_S < SUPERVISOR_AGENT_GRACE_S == SupervisorOptions().stop_grace_s
    part = supervisor_part(Settings(data_dir=tmp_path))
    assert part.stop_grace_s == LAUNCHER_SUPERVISOR_GRACE_S > SupervisorOptions().stop_grace_s
