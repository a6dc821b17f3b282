"""The operation language: six atomic memory operations, their text form, and a parser that never raises.

Owns: the op records (`Create`, `Read`, `Update`, `Delete`, `Scratch`, `Answer`), `format_ops` (ops -> text) and
`parse_ops` (text -> ops + short error lines). Knows nothing about the store, retrieval, tokenizers or models: an op
is only a request; `atommem/memory.py` decides whether it can be carried out.

Text form (each tag is one special token of the tokenizer, so the policy emits tags, never spells them):

    <create>TEXT</create>   <read>QUERY</read>   <update>I: TEXT</update>   <delete>I</delete>
    <scratch>TEXT</scratch> <answer>TEXT</answer>

I is the 1-based position in the memory list shown in the observation. An update splits at its FIRST colon, so
`<update>1: Mary: kitchen</update>` rewrites position 1 to `Mary: kitchen`. Empty scratch text is allowed (it clears
the scratchpad); every other op needs non-empty text.

Design choices:
- The parser reads a small model's output, which is often malformed. It therefore never raises, whatever it gets
  (str, bytes decoded with errors='replace', or anything else), keeps every valid op in order, and reports each
  problem as a short line (< 80 chars, at most MAX_ERRORS of them, deduplicated) because the lines are shown back to
  the model in the next observation.
- Linear time: one left-to-right scan with a regex that only matches bounded tag tokens `<name>` / `</name>` (names
  up to 32 chars); input beyond MAX_INPUT_CHARS is cut, and the cut is reported.
- No nesting: an op's content runs to the next tag token. If that token is not the op's own closing tag, the op is
  dropped ("unclosed <create>") and scanning resumes AT that token, so `<create>x<read>q</read>` still yields the
  read. An unknown `<foo>...</foo>` is one error, skipped whole. A `<` that does not form a tag token (`a < b`) is
  plain text.
- Whitespace between ops is ignored and content is stripped, so format -> parse is the identity on ops whose texts
  are stripped and contain no `<`/`>`.
- Indices are ASCII digits only, at most 9 of them (int() of a 5000-digit string raises in Python >= 3.11).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Union

OP_TAGS = ("create", "read", "update", "delete", "scratch", "answer")
MAX_INPUT_CHARS = 20_000
MAX_ERRORS = 8
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]{0,31})>")
_INDEX = re.compile(r"[0-9]{1,9}")
_SIGNED = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Create:
    text: str
    kind: ClassVar[str] = "create"


@dataclass(frozen=True)
class Read:
    query: str
    kind: ClassVar[str] = "read"


@dataclass(frozen=True)
class Update:
    index: int
    text: str
    kind: ClassVar[str] = "update"


@dataclass(frozen=True)
class Delete:
    index: int
    kind: ClassVar[str] = "delete"


@dataclass(frozen=True)
class Scratch:
    text: str
    kind: ClassVar[str] = "scratch"


@dataclass(frozen=True)
class Answer:
    text: str
    kind: ClassVar[str] = "answer"


Op = Union[Create, Read, Update, Delete, Scratch, Answer]
OP_TYPES = (Create, Read, Update, Delete, Scratch, Answer)


@dataclass
class ParseResult:
    ops: list = field(default_factory=list)      # list[Op], in the order they were written
    errors: list = field(default_factory=list)   # list[str], short human-readable lines

    @property
    def ok(self) -> bool:
        return not self.errors


def tagged(tag: str, text: str) -> str:
    """`<tag> text</tag>`: content follows its opening tag after one space (none when empty). Actions and every
    field of an observation (observation.py) use it, so a name is preceded by a space wherever it appears and
    tokenizes the same in the chunk, in memory and in the action: copying it is a plain token-for-token copy.
    The parser strips the space."""
    return f"<{tag}> {text}</{tag}>" if text else f"<{tag}></{tag}>"


def format_op(op: Op) -> str:
    """The text form of one op (no validation: the engine judges the content)."""
    if isinstance(op, Create):
        return tagged("create", op.text)
    if isinstance(op, Read):
        return tagged("read", op.query)
    if isinstance(op, Update):
        return tagged("update", f"{op.index}: {op.text}")
    if isinstance(op, Delete):
        return tagged("delete", str(op.index))
    if isinstance(op, Scratch):
        return tagged("scratch", op.text)
    if isinstance(op, Answer):
        return tagged("answer", op.text)
    raise TypeError(f"not an op: {op!r}")


def format_ops(ops) -> str:
    """Concatenate the text forms, no separators."""
    return "".join(format_op(op) for op in ops)


def _short(s: str, n: int = 12) -> str:
    """A snippet of user text safe to echo in an error line."""
    s = s.strip().replace("\n", " ")
    return s if len(s) <= n else s[: n - 3] + "..."


def _parse_index(kind: str, raw: str) -> tuple[int | None, str | None]:
    raw = raw.strip()
    if not raw:
        return None, f"{kind}: missing index"
    if not _INDEX.fullmatch(raw):
        if _SIGNED.fullmatch(raw):
            return None, f"{kind}: index must be 1 or more" if raw[0] == "-" else f"{kind}: index too large"
        return None, f"{kind}: index '{_short(raw)}' is not a number"
    index = int(raw)
    if index < 1:
        return None, f"{kind}: index must be 1 or more"
    return index, None


def _make_op(name: str, content: str) -> tuple[Op | None, str | None]:
    """Build the op for one closed tag, or say why not."""
    text = content.strip()
    if name == "create":
        return (Create(text), None) if text else (None, "create: empty text")
    if name == "read":
        return (Read(text), None) if text else (None, "read: empty query")
    if name == "scratch":
        return Scratch(text), None
    if name == "answer":
        return (Answer(text), None) if text else (None, "answer: empty text")
    if name == "delete":
        index, err = _parse_index("delete", text)
        return (Delete(index), None) if err is None else (None, err)
    # update: "I: TEXT", split at the first colon
    head, colon, rest = text.partition(":")
    if not colon:
        return None, "update: expected 'index: text'"
    index, err = _parse_index("update", head)
    if err is not None:
        return None, err
    rest = rest.strip()
    return (Update(index, rest), None) if rest else (None, "update: empty text")


def _as_text(raw) -> tuple[str, str | None]:
    if isinstance(raw, str):
        return raw, None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw).decode("utf-8", errors="replace"), None
    return "", "input is not text"


class _Errors:
    """Deduplicated, capped error lines."""

    def __init__(self):
        self.lines: list[str] = []
        self.dropped = 0

    def add(self, line: str) -> None:
        if line in self.lines:
            return
        if len(self.lines) < MAX_ERRORS:
            self.lines.append(line[:79])
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        return self.lines + ([f"... and {self.dropped} more errors"] if self.dropped else [])


def parse_ops(raw) -> ParseResult:
    """Parse a policy output into ops and error lines. Never raises; linear in the (capped) input length."""
    try:
        return _parse(raw)
    except Exception as exc:  # a bug here must not take down an episode; make it visible instead
        return ParseResult([], [f"parser failure: {type(exc).__name__}"])


def _parse(raw) -> ParseResult:
    errors = _Errors()
    text, problem = _as_text(raw)
    if problem:
        errors.add(problem)
    if len(text) > MAX_INPUT_CHARS:
        text = text[:MAX_INPUT_CHARS]
        errors.add(f"input too long: cut at {MAX_INPUT_CHARS} chars")
    ops: list[Op] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _TAG.search(text, pos)
        gap_end = m.start() if m else end
        if text[pos:gap_end].strip():
            errors.add("stray text outside tags")
        if m is None:
            break
        closing, name = m.group(1), m.group(2).lower()
        pos = m.end()
        if closing:
            errors.add(f"stray </{name}>")
            continue
        close = _TAG.search(text, pos)
        if name not in OP_TAGS:
            errors.add(f"unknown tag <{name}>")
            if close is not None and close.group(1) and close.group(2).lower() == name:
                pos = close.end()  # skip `<foo>...</foo>` as one mistake
            continue
        if close is None:
            errors.add(f"unclosed <{name}>")
            break
        if close.group(1) and close.group(2).lower() == name:
            op, err = _make_op(name, text[pos:close.start()])
            if op is not None:
                ops.append(op)
            else:
                errors.add(err)
            pos = close.end()
        else:
            errors.add(f"unclosed <{name}>")
            pos = close.start()  # re-read the interrupting tag as the start of something new
    return ParseResult(ops, errors.result())
