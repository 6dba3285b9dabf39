"""``python -m mtrobot.agent --account ID``: the agent as the supervisor starts it (see :mod:`.entry`)."""

from mtrobot.agent.entry import main

raise SystemExit(main())
