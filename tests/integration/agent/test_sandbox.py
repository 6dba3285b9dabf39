"""The sandboxed runtimes with real processes: what an agent sees, and the limits the kernel enforces.

The "agent" here is a small probe script started exactly as the supervisor starts an agent (through the
runtime, with a secret on stdin); it writes what it could see into its own directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from mtrobot.settings import Settings
from mtrobot.supervisor.runtime import AgentLaunch, AgentLimits, AgentProcess, AgentRuntime
from mtrobot.supervisor.runtime.choice import choose_runtime, podman_unavailable
from mtrobot.supervisor.runtime.limits import CGROUP_PREFIX, AgentLimiter
from mtrobot.supervisor.runtime.sandbox import (
    BubblewrapRuntime,
    LimitedProcess,
    LimitedRuntime,
    _under,
    alive,
    bwrap_binary,
    bwrap_works,
    code_roots,
)
from mtrobot.supervisor.runtime.sandbox_podman import PodmanRuntime, conmon_exit_file, podman_binaries
from mtrobot.supervisor.runtime.sandbox_status import holds

BWRAP = bwrap_binary()
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or bwrap_works(BWRAP) is not None, reason="bubblewrap cannot run on this host"
)
SANDBOXES = ["bubblewrap", "podman"]
"""The runtimes that give an agent a private view: the same promises hold in each."""


def sandbox(kind: str, data_dir: Path) -> AgentRuntime:
    """That runtime on this host, or a skip saying why it cannot run here (the test set-up installs both)."""
    settings = Settings(data_dir=data_dir)
    if kind == "podman":
        why = podman_unavailable(settings)
        found = podman_binaries()
        if why is not None or found is None:
            pytest.skip(f"podman cannot run on this host: {why}")
        return PodmanRuntime(settings, *found)
    if BWRAP is None or bwrap_works(BWRAP) is not None:
        pytest.skip("bubblewrap cannot run on this host")
    return BubblewrapRuntime(settings, BWRAP)


needs_cgroups = pytest.mark.skipif(not AgentLimiter().hierarchies, reason="no writable cgroup here")

PROBE = textwrap.dedent(
    """
    import json, os, sys
    secret = sys.stdin.readline().strip()
    here = sys.argv[1]
    data = os.environ["MTROBOT_DATA_DIR"]
    project = os.path.dirname(os.path.dirname(os.path.dirname(__import__("mtrobot").__file__)))
    seen = {
        "stdin": secret,
        "env": sorted(os.environ),
        "cwd": here,
        "pid": os.getpid(),
        "visible_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "data_db": os.path.exists(os.path.join(data, "mtrobot.db")),
        "master_key": os.path.exists(os.path.join(data, "master.key")),
        "other_agent": os.path.exists(os.path.join(data, "connector", "other", "secret.txt")),
        "sim": json.load(open(os.path.join(data, "run", "simbroker.json"))),
        "run_dir": sorted(os.listdir(os.path.join(data, "run"))),
        "root_home": sorted(os.listdir("/root")) if os.path.isdir("/root") else [],
        "project": sorted(os.listdir(project)),
        "caps": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0],
    }
    import mtrobot  # the code is there, read-only
    seen["code"] = mtrobot.__file__
    try:
        open(mtrobot.__file__, "a").close()
        seen["code_writable"] = True
    except OSError:
        seen["code_writable"] = False
    with open(os.path.join(here, "probe.json"), "w") as f:
        json.dump(seen, f)
    """
)


def _launch(data_dir: Path, account: str, code: str, limits: AgentLimits | None = None) -> AgentLaunch:
    return AgentLaunch(
        account=account,
        argv=(sys.executable, "-c", code, str(data_dir / "connector" / account)),
        env={"PATH": os.environ["PATH"], "MTROBOT_DATA_DIR": str(data_dir)},
        stdin=b"sealed-handoff-for-" + account.encode() + b"\n",  # one line, as the real hand-off
        agent_dir=data_dir / "connector" / account,
        limits=limits or AgentLimits(),
        log_path=data_dir / "logs" / f"agent-{account}.log",
    )


@pytest.fixture
def host(data_dir: Path) -> Path:
    """A data dir as `mtrobot up` leaves it: a database, a master key file, another agent's directory."""
    (data_dir / "mtrobot.db").write_text("not for agents")
    (data_dir / "master.key").write_text("not for agents")
    (data_dir / "run").mkdir()
    sim = {"host": "127.0.0.1", "port": 1, "servers": ["S"], "admin_token": "not-for-agents"}
    (data_dir / "run" / "simbroker.json").write_text(json.dumps(sim))
    (data_dir / "run" / "agents.json").write_text("{}")
    other = data_dir / "connector" / "other"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("account other's files")
    return data_dir


async def _run(process: AgentProcess, timeout: float = 15.0) -> int:
    import asyncio

    return await asyncio.wait_for(process.wait(), timeout)


def _log(data_dir: Path, account: str) -> str:
    path = data_dir / "logs" / f"agent-{account}.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_a_sandboxed_agent_sees_its_own_directory_and_the_code_only(host: Path, kind: str) -> None:
    runtime = sandbox(kind, host)
    process = await runtime.start(_launch(host, "alpha", PROBE))
    assert await _run(process) == 0, _log(host, "alpha")
    seen = json.loads((host / "connector" / "alpha" / "probe.json").read_text())
    assert seen["stdin"] == "sealed-handoff-for-alpha"
    assert seen["sim"] == {"host": "127.0.0.1", "port": 1, "servers": ["S"]}, "the simulator's admin token"
    assert seen["run_dir"] == ["login-buckets", "simbroker.json"]
    assert seen["data_db"] is False and seen["master_key"] is False and seen["other_agent"] is False
    # /root holds nothing but the way to the interpreter (pyenv here), the project only its code and venv
    on_the_way = {p.relative_to("/root").parts[0] for p in code_roots() if _under(p, Path("/root"))}
    assert set(seen["root_home"]) <= on_the_way
    assert set(seen["project"]) <= {"src", ".venv", "venv"}, seen["project"]
    assert seen["code_writable"] is False
    assert int(seen["caps"], 16) == 0
    assert seen["pid"] == 1 and os.getpid() not in seen["visible_pids"] and len(seen["visible_pids"]) <= 2
    assert "MTROBOT_MASTER_KEY" not in seen["env"]
    assert process.isolation["runtime"].startswith(kind)
    assert process.isolation["mount"].startswith("private")
    assert process.isolation["pid_view"].startswith("private")
    said = {key: holds(words) for key, words in process.isolation.items()}
    assert said == {**dict.fromkeys(process.isolation, "yes"), "network": "partly"}, process.isolation


async def test_limited_runtime_says_the_mount_is_not_isolated(host: Path) -> None:
    process = await LimitedRuntime().start(_launch(host, "beta", PROBE))
    assert await _run(process) == 0, _log(host, "beta")
    seen = json.loads((host / "connector" / "beta" / "probe.json").read_text())
    assert seen["stdin"] == "sealed-handoff-for-beta"
    assert seen["master_key"] is True  # nothing hides it here, and the isolation words say so
    assert "not isolated" in process.isolation["mount"]
    assert "not isolated" in process.isolation["pid_view"]


LEAK = (
    "import sys; sys.stdin.readline(); chunks = [bytearray(8 * 2**20) for _ in range(64)]; print('survived')"
)


@needs_cgroups
@pytest.mark.parametrize("kind", ["limited", *SANDBOXES])
async def test_memory_limit_is_enforced_and_reported(host: Path, kind: str) -> None:
    runtime = LimitedRuntime(AgentLimiter()) if kind == "limited" else sandbox(kind, host)
    process = await runtime.start(_launch(host, "leaky", LEAK, AgentLimits(memory_mb=64)))
    assert process.isolation["memory"].endswith("64 MiB") and "cgroup" in process.isolation["memory"]
    code = await _run(process)
    assert code in (-9, 137), _log(host, "leaky")
    assert "survived" not in _log(host, "leaky")
    breach = process.limit_breach()  # type: ignore[attr-defined]
    assert breach is not None and "memory limit" in breach
    assert not _leftover_groups(), "the agent's cgroups are removed once it has exited"
    assert not any(group.exists() for group in process.cgroups.dirs)  # type: ignore[attr-defined]


def _leftover_groups() -> list[str]:
    found = []
    for h in AgentLimiter().hierarchies:
        found += [p.name for p in h.own.iterdir() if p.name.startswith(CGROUP_PREFIX + "leaky")]
    return found


FORKS = textwrap.dedent(
    """
    import os, subprocess, sys
    sys.stdin.readline().strip()
    kids, refused = [], None
    for i in range(40):
        try:
            kids.append(subprocess.Popen(["sleep", "5"]))
        except OSError as exc:
            refused = i
            break
    files, nofile = [], None
    for i in range(400):
        try:
            files.append(open("/dev/null"))
        except OSError:
            nofile = i
            break
    for k in kids:
        k.kill()
    print("pids refused at", refused, "files refused at", nofile)
    sys.exit(0 if refused is not None and nofile is not None else 1)
    """
)


@needs_cgroups
@pytest.mark.parametrize("kind", ["limited", "podman"])
async def test_process_and_open_file_limits(host: Path, kind: str) -> None:
    runtime = LimitedRuntime() if kind == "limited" else sandbox(kind, host)
    process = await runtime.start(_launch(host, "forky", FORKS, AgentLimits(max_pids=8, max_open_files=64)))
    assert await _run(process) == 0, _log(host, "forky")
    assert process.isolation["pids"].endswith("8 processes") and "cgroup" in process.isolation["pids"]
    assert process.isolation["files"] == "rlimit 64 open files"


def test_the_choice_is_the_strongest_the_host_runs(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTROBOT_AGENT_RUNTIME", raising=False)
    chosen = choose_runtime(Settings(data_dir=host))
    bubblewrap = "bubblewrap" if BWRAP is not None and bwrap_works(BWRAP) is None else "limited"
    assert chosen.name == ("podman" if podman_unavailable(Settings(data_dir=host)) is None else bubblewrap)
    monkeypatch.setenv("MTROBOT_AGENT_RUNTIME", "local")
    assert choose_runtime(Settings(data_dir=host)).name == "local"
    monkeypatch.setenv("MTROBOT_AGENT_RUNTIME", "docker")
    with pytest.raises(Exception, match="MTROBOT_AGENT_RUNTIME must be one of"):
        choose_runtime(Settings(data_dir=host))


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    secret = sys.stdin.readline().strip()  # account A's credentials, as the hand-off gives them
    kept = [secret.encode() * 1]  # held in memory, like the agent's open session
    with open(os.path.join(sys.argv[1], "session.txt"), "w") as f:
        f.write(secret)  # and in a file of its own directory
    open(os.path.join(sys.argv[1], "ready"), "w").close()
    time.sleep(60)
    """
)

HUNTER = textwrap.dedent(
    """
    import json, os, sys
    sys.stdin.readline().strip()
    needle = sys.argv[2].encode()
    found = []
    pids = sys.argv[3].split(",") if len(sys.argv) > 3 else [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in [p for p in pids if int(p) != os.getpid()]:
        for part in ("environ", "cmdline", "maps"):
            try:
                if needle in open(f"/proc/{pid}/{part}", "rb").read():
                    found.append(f"/proc/{pid}/{part}")
            except OSError:
                pass
        try:
            mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
            for line in open(f"/proc/{pid}/maps"):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if "r" in line.split()[1] and hi - lo < 1 << 28:
                    try:
                        mem.seek(lo)
                        if needle in mem.read(hi - lo):
                            found.append(f"/proc/{pid}/mem")
                            break
                    except (OSError, OverflowError, ValueError):
                        pass
        except OSError:
            pass
    data = os.environ["MTROBOT_DATA_DIR"]
    tops = (data, "/tmp", "/run", "/home", "/var", "/work") if len(sys.argv) <= 3 else (data,)
    for top in tops:  # code roots (read-only) are not walked
        for root, dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    if needle in open(path, "rb").read(1 << 20):
                        found.append(path)
                except OSError:
                    pass
    with open(os.path.join(sys.argv[1], "found.json"), "w") as f:
        json.dump(found, f)
    """
)


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_account_a_credentials_are_not_readable_from_agent_b(host: Path, kind: str) -> None:
    """A holds its password in memory and in its own directory; B, a root process in its own sandbox,
    looks for it in every process's environ, cmdline, maps and memory it can see, and in every file."""
    import asyncio

    runtime = sandbox(kind, host)
    password = "A-pass-" + os.urandom(8).hex()
    a_launch = _launch(host, "acct_a", HOLDER)
    holder = await runtime.start(
        AgentLaunch(**{**a_launch.__dict__, "stdin": password.encode() + b"\n"})  # type: ignore[arg-type]
    )
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not (host / "connector" / "acct_a" / "ready").exists():
            assert asyncio.get_running_loop().time() < deadline, _log(host, "acct_a")
            await asyncio.sleep(0.02)
        b_launch = _launch(host, "acct_b", HUNTER)
        hunter = await runtime.start(
            AgentLaunch(**{**b_launch.__dict__, "argv": (*b_launch.argv, password)})  # type: ignore[arg-type]
        )
        assert await _run(hunter, 30) == 0, _log(host, "acct_b")
        found = json.loads((host / "connector" / "acct_b" / "found.json").read_text())
        assert found == []
        # The same hunt without the sandbox finds it (the hunt has teeth): memory and the session file.
        # (Narrowed to A's process and the data dir: the whole host would take too long.)
        a_pid = str(holder.pid)
        argv = (*b_launch.argv, password, a_pid)
        control = await LimitedRuntime().start(
            AgentLaunch(**{**b_launch.__dict__, "argv": argv})  # type: ignore[arg-type]
        )
        assert await _run(control, 30) == 0, _log(host, "acct_b")
        found = json.loads((host / "connector" / "acct_b" / "found.json").read_text())
        assert any(f.endswith("/mem") for f in found), found
        assert str(host / "connector" / "acct_a" / "session.txt") in found
    finally:
        holder.kill()
        await _run(holder)


@needs_cgroups
async def test_groups_left_by_a_killed_supervisor_are_swept_and_live_ones_kept(host: Path) -> None:
    import asyncio

    from mtrobot.supervisor.runtime.limits import sweep_stale

    limiter = AgentLimiter()
    left = [h.own / f"{CGROUP_PREFIX}stale-00000000" for h in limiter.hierarchies]
    for group in left:
        (group / "conmon").mkdir(parents=True)  # a container's monitor group inside, as podman leaves it
    live = await LimitedRuntime(limiter).start(
        _launch(host, "live", "import sys, time; sys.stdin.readline(); time.sleep(30)")
    )
    try:
        assert sweep_stale(limiter.hierarchies, older_than_s=-1) == len(left)
        assert not any(g.exists() for g in left)
        groups = live._plan.cgroups.dirs  # type: ignore[attr-defined]
        assert groups and all(g.exists() for g in groups), "a group with its agent in it stays"
    finally:
        live.kill()
        await asyncio.wait_for(live.wait(), 15)
    assert not any(g.exists() for g in groups)


SLEEPER = "import sys, time; sys.stdin.readline(); time.sleep(30)"


@needs_cgroups
async def test_a_demoted_agent_has_the_least_cpu_weight_and_keeps_its_quota(host: Path) -> None:
    limiter = AgentLimiter()
    if not any("cpu" in h.controllers for h in limiter.hierarchies):
        pytest.skip("no writable cpu controller here")
    process = await LimitedRuntime(limiter).start(_launch(host, "hog", SLEEPER, AgentLimits(cpu_share=0.5)))
    try:
        assert isinstance(process, LimitedProcess)
        group, version = process.cgroups.groups["cpu"], process.cgroups.version
        weight, quota = ("cpu.weight", "cpu.max") if version == 2 else ("cpu.shares", "cpu.cfs_quota_us")
        normal, least = {1: ("1024", "2"), 2: ("100", "1")}[version]
        before = (group / quota).read_text()
        assert (group / weight).read_text().strip() == normal
        assert process.demote_cpu(True)
        assert (group / weight).read_text().strip() == least
        assert (group / quota).read_text() == before
        assert process.demote_cpu(False)
        assert (group / weight).read_text().strip() == normal
    finally:
        process.kill()
        await _run(process)


GRACEFUL = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdin.readline().strip()
    time.sleep(60)
    sys.exit(3)
    """
)


def _children() -> list[str]:
    """The command lines of this process's children."""
    kids: list[str] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                kids.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return kids


STUBBORN = "import os, sys, time; sys.stdin.readline(); open('ready', 'w').close(); time.sleep(60)"


async def _ready(data_dir: Path, account: str, timeout: float = 15.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (data_dir / "connector" / account / "ready").exists():
        assert loop.time() < deadline, _log(data_dir, account)
        await asyncio.sleep(0.02)


async def test_a_container_agent_stops_on_terminate_and_on_kill_and_its_container_goes(host: Path) -> None:
    runtime = sandbox("podman", host)
    assert isinstance(runtime, PodmanRuntime)
    calm = await runtime.start(_launch(host, "calm", GRACEFUL))
    stubborn = await runtime.start(_launch(host, "stubborn", STUBBORN))
    assert not [c for c in _children() if "podman" in c], "no podman client stays per agent"
    assert conmon_exit_file(stubborn.pid) is not None, "its exit code is read from conmon's file"
    seven = await runtime.start(_launch(host, "seven", "import sys; sys.stdin.readline(); sys.exit(7)"))
    assert await _run(seven) == 7
    calm.terminate()  # at once: the second SIGTERM reaches it once it catches SIGTERM
    assert await _run(calm) == 0, _log(host, "calm")
    await _ready(host, "stubborn")
    stubborn.kill()  # it runs, with no handler for anything: SIGKILL from outside ends it
    assert await _run(stubborn) in (-9, 137), _log(host, "stubborn")  # its client is killed too
    for process in (calm, stubborn):
        assert await runtime._podman("ps", "-a", "-q", "--filter", f"name={process.name}") == ""  # type: ignore[attr-defined]


async def test_containers_left_by_a_killed_supervisor_are_removed_by_the_next(host: Path) -> None:
    """Its podman clients die with it, its containers would not: two agents of one account would trade."""
    first = sandbox("podman", host)
    left = await first.start(_launch(host, "left", SLEEPER))
    other_host = host.parent / "other-data-dir"
    other_host.mkdir()
    elsewhere = sandbox("podman", other_host)
    kept = await elsewhere.start(_launch(other_host, "kept", SLEEPER))
    try:
        second = sandbox("podman", host)  # a new supervisor on the same data dir
        assert isinstance(second, PodmanRuntime)
        assert await _run(left) in (-9, 137), "the left container is gone"
        assert second.sweep() == 0
        assert alive(kept.pid), "another data dir's agents are not touched"
    finally:
        kept.kill()
        await _run(kept)


def test_the_container_view_refuses_a_path_podman_would_split(tmp_path: Path) -> None:
    """``--volume SRC:DST:ro`` and ``--tmpfs DST:opts``: a ':' or ',' in a path would mount something else."""
    from mtrobot.core.errors import ConfigError
    from mtrobot.supervisor.runtime.sandbox_podman import podman_view

    data = tmp_path / "data:dir"
    with pytest.raises(ConfigError, match="cannot mount a path with ':' or ','"):
        podman_view(Settings(data_dir=data), _launch(data, "x", ""))
    if podman_binaries() is not None:  # and the choice does not pick podman for it: it says why
        assert "':' or ','" in str(podman_unavailable(Settings(data_dir=data)))
