"""Write LoggerHub plugins in Python (componentize-py).

Batches cross the WebAssembly boundary as one byte buffer in the LoggerHub
batch encoding ("LHB1", specified in docs/PLUGINS.md); this module decodes
it into `Record`s and encodes them back, so a Python plugin sees records as
a Rust one does. It has no dependencies and runs natively too, which is how
a plugin's logic is unit-tested outside WebAssembly.
"""

from dataclasses import dataclass, field
import struct

MAGIC = b"LHB1"

TRACE, DEBUG, INFO, WARN, ERROR, FATAL = range(6)
LEVEL_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


class DecodeError(ValueError):
    """The buffer is not a well-formed batch."""


@dataclass
class Record:
    id: str = ""
    tenant: str = ""
    service: str = ""
    level: int = INFO
    timestamp: int = 0  # unix nanoseconds
    message: str = ""
    full_log: str = ""
    language: str | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)

    def attr(self, key: str) -> str | None:
        """The attribute's text: a string, or a number's or a boolean's
        literal ("500", "true"); `attr_value` gives its type."""
        for k, v in self.attributes:
            if k == key:
                return v[1:] if v.startswith(MARK) else v
        return None

    def attr_value(self, key: str) -> str | int | float | bool | None:
        """The attribute as the JSON value it was sent as."""
        for k, v in self.attributes:
            if k == key:
                return _typed(v)
        return None

    def set_attr(self, key: str, value: str | int | float | bool) -> None:
        """Sets an attribute; a number or a boolean keeps its type."""
        value = _mark(value)
        for i, (k, _) in enumerate(self.attributes):
            if k == key:
                self.attributes[i] = (key, value)
                return
        self.attributes.append((key, value))


# A number or a boolean is held as NUL and its JSON literal ("\0500",
# "\0true"); no string holds a NUL (docs/PLUGINS.md, "Typed values").
MARK = "\0"


def _typed(v: str) -> str | int | float | bool:
    if not v.startswith(MARK):
        return v
    literal = v[1:]
    if literal in ("true", "false"):
        return literal == "true"
    try:
        return int(literal)
    except ValueError:
        return float(literal)


def _mark(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return MARK + ("true" if value else "false")
    if isinstance(value, int):
        return MARK + str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        return MARK + (str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value))
    return value


class _Reader:
    def __init__(self, buf: bytes):
        self.buf = memoryview(buf)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n > len(self.buf) - self.pos:
            raise DecodeError(f"invalid batch at byte {self.pos}: truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return struct.unpack_from("<I", self.take(4))[0]

    def string(self) -> str:
        raw = self.take(self.u32())
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid batch at byte {self.pos}: not UTF-8") from e


def decode(buf: bytes) -> list[Record]:
    r = _Reader(buf)
    if bytes(r.take(4)) != MAGIC:
        raise DecodeError("invalid batch at byte 0: bad magic")
    out = []
    for _ in range(r.u32()):
        rec = Record(id=r.string(), tenant=r.string(), service=r.string())
        rec.level = r.take(1)[0]
        if rec.level > FATAL:
            raise DecodeError(f"invalid batch at byte {r.pos}: bad level")
        rec.timestamp = struct.unpack_from("<q", r.take(8))[0]
        rec.message = r.string()
        rec.full_log = r.string()
        tag = r.take(1)[0]
        if tag == 1:
            rec.language = r.string()
        elif tag != 0:
            raise DecodeError(f"invalid batch at byte {r.pos}: bad option tag")
        rec.attributes = [(r.string(), r.string()) for _ in range(r.u32())]
        out.append(rec)
    if r.pos != len(r.buf):
        raise DecodeError(f"invalid batch at byte {r.pos}: trailing bytes")
    return out


def encode(records: list[Record]) -> bytes:
    parts = [MAGIC, struct.pack("<I", len(records))]

    def put(s: str) -> None:
        b = s.encode("utf-8")
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)

    for rec in records:
        put(rec.id)
        put(rec.tenant)
        put(rec.service)
        parts.append(struct.pack("<Bq", rec.level, rec.timestamp))
        put(rec.message)
        put(rec.full_log)
        if rec.language is None:
            parts.append(b"\x00")
        else:
            parts.append(b"\x01")
            put(rec.language)
        parts.append(struct.pack("<I", len(rec.attributes)))
        for k, v in rec.attributes:
            put(k)
            put(v)
    return b"".join(parts)
