"""Question and topic sets: the JSONL schema, its validation and the gold lookup.

A question set has one JSON object a line (blank lines are skipped)::

    {"id": "q001", "question": "...", "type": "lookup", "gold": ["Title or arXiv id"], "reference_answer": "..."}

``type`` is any word (lookup, multi, detail and unanswerable in the shipped sets); only
``unanswerable`` questions have an empty ``gold``. Optional fields: ``style`` (how the question is
worded: plain, keyword, chatty, typo or expert), ``kind`` (an unanswerable question's: near_miss
or general) and ``expected`` (a detail question's strings that any correct answer contains). Every
malformed line is reported as ``<file> line N: ...``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from bot.errors import UserError
from bot.normalize import GoldIndex
from bot.schema import Paper
from bot.text import BadQuestion, check_question, file_lines, has_lone_surrogate

Style = Literal["plain", "keyword", "chatty", "typo", "expert"]
UnanswerableKind = Literal["near_miss", "general"]
TopicForm = Literal["broad", "narrow", "plain", "uncovered"]
STYLES: tuple[str, ...] = get_args(Style)
KINDS: tuple[str, ...] = get_args(UnanswerableKind)
TOPIC_FORMS: tuple[str, ...] = get_args(TopicForm)
UNANSWERABLE = "unanswerable"
DETAIL = "detail"
DIGEST_CHARS = 16  # hex digits of the dataset's sha256 kept in results and baselines


class EvalError(UserError, ValueError):
    """A problem with the eval's inputs; the message is for the user."""


class DatasetError(EvalError):
    """A malformed or unusable question set; ``problems`` lists every malformed line."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(self.problems[0] + more)


# What a field must be, said once for every way it can be wrong (wrong type, empty, unknown value).
_FIELD_RULES = {
    "id": "'id' must be a non-empty string",
    "question": "'question' must be non-empty text",
    "type": "'type' must be a word such as lookup, multi, detail or unanswerable",
    "gold": "'gold' must be a list of paper titles or arXiv ids",
    "reference_answer": "'reference_answer' must be text",
    "style": f"'style' must be one of {', '.join(STYLES)}",
    "kind": f"'kind' must be one of {', '.join(KINDS)}",
    "expected": "'expected' must be a non-empty list of non-empty strings",
    "topic": "'topic' must be non-empty text",
    "form": f"'form' must be one of {', '.join(TOPIC_FORMS)}",
    "gold_added": "'gold_added' must be a list of paper titles or arXiv ids",
}


def _texts(value: Any, field: str) -> list[str]:
    """A list of non-empty strings, stripped; anything else breaks the field's rule."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(_FIELD_RULES[field])
    return [v.strip() for v in value]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _decodable(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and has_lone_surrogate(t) for t in texts):
            raise ValueError("not valid UTF-8 text (a lone surrogate escape)")
        return value

    @field_validator("gold", "gold_added", mode="before", check_fields=False)
    @classmethod
    def _gold_list(cls, value: Any, info: Any) -> list[str]:
        return _texts(value, info.field_name)


class QuestionRow(_Row):
    """One line of a question set, as written."""

    id: str
    question: str
    type: str
    gold: list[str]
    reference_answer: str = ""
    style: Style | None = None
    kind: UnanswerableKind | None = None
    expected: list[str] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        # Numbers are accepted as ids (and become strings); booleans are not.
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise ValueError(_FIELD_RULES["id"])
        return str(value)

    @field_validator("question", mode="before")
    @classmethod
    def _question(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(_FIELD_RULES["question"])
        return value.strip()

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError(_FIELD_RULES["type"])
        return value

    @field_validator("expected", mode="before")
    @classmethod
    def _expected(cls, value: Any) -> list[str] | None:
        if value is None:
            return None
        texts = _texts(value, "expected")
        if not texts:
            raise ValueError(_FIELD_RULES["expected"])
        return texts

    @model_validator(mode="after")
    def _consistent(self) -> QuestionRow:
        if self.type == UNANSWERABLE and self.gold:
            raise ValueError("an unanswerable question must have an empty 'gold'")
        if self.type != UNANSWERABLE and not self.gold:
            raise ValueError("'gold' is empty; only type 'unanswerable' has no gold papers")
        if self.kind is not None and self.type != UNANSWERABLE:
            raise ValueError("'kind' is only for unanswerable questions")
        if self.expected is not None and self.type != DETAIL:
            raise ValueError("'expected' is only for detail questions")
        return self


class EvalQuestion(QuestionRow):
    """A validated question and the line it came from."""

    line: int = 0

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


class TopicRow(_Row):
    """One line of a topic set (evals/topics*.jsonl): a summary topic and its gold papers."""

    id: str
    topic: str
    gold: list[str]
    form: TopicForm | None = None  # how the topic is worded (topics2.jsonl)
    gold_added: list[str] = []  # gold papers added when the list was relabelled (topics.jsonl)

    @field_validator("id", "topic", mode="before")
    @classmethod
    def _text(cls, value: Any, info: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(_FIELD_RULES[info.field_name])
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> TopicRow:
        if self.form is not None and (self.form == "uncovered") != (not self.gold):
            raise ValueError("'gold' must be empty exactly when 'form' is 'uncovered'")
        if not set(self.gold_added) <= set(self.gold):
            raise ValueError("every 'gold_added' entry must also be in 'gold'")
        return self


R = TypeVar("R", bound=_Row)


def _problem(error: ValidationError) -> str:
    """One line for everything wrong with a row: missing and unknown fields first, then the rest."""
    missing = [str(e["loc"][0]) for e in error.errors() if e["type"] == "missing"]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    unknown = [str(e["loc"][0]) for e in error.errors() if e["type"] == "extra_forbidden"]
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}"
    messages: list[str] = []
    for e in error.errors():
        if e["type"] == "value_error":
            message = str(e["ctx"]["error"])
        else:  # a wrong type or a value outside a fixed set
            message = _FIELD_RULES.get(str(e["loc"][0]) if e["loc"] else "", e["msg"])
        if message not in messages:
            messages.append(message)
    return "; ".join(messages)


def _read_lines(path: Path) -> list[str]:
    try:
        return file_lines(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"dataset {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset {path} cannot be read ({exc})") from exc


def read_rows(path: Path, model: type[R]) -> tuple[list[tuple[int, R]], list[str]]:
    """Every valid row of a JSONL file with its line number, and one problem per malformed line.

    Raises :class:`DatasetError` only when the file cannot be read.
    """
    rows: list[tuple[int, R]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            row = model.model_validate(obj)
        except ValidationError as exc:
            problems.append(f"{where}: {_problem(exc)}")
            continue
        row_id = str(getattr(row, "id", ""))
        if row_id in seen:
            problems.append(f"{where}: id {row_id!r} already used on line {seen[row_id]}")
            continue
        seen[row_id] = number
        rows.append((number, row))
    return rows, problems


def load_dataset(path: Path) -> list[EvalQuestion]:
    """Read a JSONL question set; malformed lines raise one :class:`DatasetError` naming each."""
    rows, problems = read_rows(path, QuestionRow)
    for number, row in rows:
        try:
            check_question(row.question)  # the rule every question that enters passes
        except BadQuestion as exc:
            problems.append(f"{path} line {number}: {exc}")
    if problems:
        raise DatasetError(problems)
    if not rows:
        raise DatasetError(f"dataset {path} has no questions")
    return [EvalQuestion(**dict(row), line=number) for number, row in rows]


def load_topics(path: Path) -> list[TopicRow]:
    """Read a JSONL topic set; malformed lines raise one :class:`DatasetError` naming each."""
    rows, problems = read_rows(path, TopicRow)
    if problems:
        raise DatasetError(problems)
    return [row for _, row in rows]


def resolve_gold(questions: list[EvalQuestion], papers: Iterable[Paper], path: Path | str) -> dict[str, list[str]]:
    """Map each question id to its gold paper ids; a gold naming no indexed paper is an error."""
    index = GoldIndex(papers)
    resolved: dict[str, list[str]] = {}
    problems: list[str] = []
    for q in questions:
        resolved[q.id], missing = index.resolve_all(q.gold)
        problems += [f"{path} line {q.line} ({q.id}): gold {gold!r} matches no indexed paper" for gold in missing]
    if problems:
        raise DatasetError(problems)
    return resolved


def dataset_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:DIGEST_CHARS]
