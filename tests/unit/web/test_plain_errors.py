"""What a trader reads when a form is wrong: the field named, in words, never pydantic's phrasing."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, ValidationError

from mtrobot.web.errors import plain_message


class Form(BaseModel):
    password: SecretStr = Field(min_length=10)
    email: str = Field(pattern=r"^[^@]+@[^@]+$")
    volume: float = Field(gt=0)
    robots: list[int] = Field(default_factory=list, max_length=2)


def messages(**values: object) -> list[str]:
    try:
        Form.model_validate(values)
    except ValidationError as exc:
        return [plain_message(e) for e in exc.errors()]
    return []


def test_each_error_names_its_field_in_plain_words() -> None:
    got = messages(password="short", email="nobody", volume=0, robots=[1, 2, 3])
    assert got == [
        "Password must be at least 10 characters long.",
        "Email must be an e-mail address such as name@example.com.",
        "Volume must be more than 0.",
        "Robots can have at most 2 entries.",
    ]
    assert messages(email="a@b", volume=1) == ["Password is required."]
    assert not any("should" in m or "after validation" in m for m in got)
