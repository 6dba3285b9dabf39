"""The words the trader reads in the activity log when an agent stops unexpectedly and comes back."""

from __future__ import annotations

import pytest

from mtrobot.supervisor.activity import back_line, exit_words, stopped_line


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (-9, "was killed (SIGKILL)"),
        (137, "was killed (SIGKILL)"),  # bubblewrap reports its child's signal as 128 + N
        (-15, "was killed (SIGTERM)"),
        (1, "exited with code 1"),
        (128, "exited with code 128"),
        (250, "exited with code 250"),  # 128 + 122 names no signal
        (None, "could not be started"),
    ],
)
def test_an_exit_status_reads_as_what_happened(code: int | None, words: str) -> None:
    assert exit_words(code) == words


def test_the_lines_say_when_it_comes_back_or_that_a_person_must_resume_it() -> None:
    assert "it is started again in 0.5 s" in stopped_line(-9, 0.53)
    assert "not restarted until you resume the account" in stopped_line(1, None)
    assert back_line(3.21) == "The account's agent is running again, 3.2 s after it stopped."
