"""The reading rules every contract shares (pocketbert/contracts.py): pydantic models that take JSON
types as written, finite numbers only, a schema version checked first, and pydantic's complaint
turned into one line naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pocketbert.common import UsageError
from pocketbert.readers import JSON_LIMIT_BYTES, check_json_depth, json_error, read_text_bounded


def _finite_json(value: Any) -> Any:
    """Free-form parts (trust, machine, notes...): JSON with finite numbers only, not absurdly nested."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError):
        raise ValueError("holds a number that is not finite (NaN or infinity) or is nested too deeply") from None
    return value


# Field types: each range rule once, with its reason.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]  # backend, precision, task, type
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FileName = Annotated[str, Field(pattern=r"^[^/\\.][^/\\]*$")]  # a plain file name inside the bundle
Count = Annotated[int, Field(ge=0, le=1 << 40)]
Ops = Annotated[int, Field(ge=0, le=1 << 24)]
Ms = Annotated[float, Field(ge=0)]  # a duration, an amount: finite (model_config) and not negative
Pct = Annotated[float, Field(ge=0, le=100)]
Free = Annotated[dict[str, Any], AfterValidator(_finite_json)]
Dim = Union[Literal["batch", "seq"], Annotated[int, Field(ge=1, le=1 << 20)],
            Annotated[list[Annotated[int, Field(ge=1, le=1 << 20)]], Field(min_length=1)]]  # CoreML: enumerated


# A contract read from a file, or built from a dict once its last step is done, is complete: its
# rules on the whole (an ok record has its samples) hold. One built field by field (Record(...),
# .replace) is checked field by field until then.
COMPLETE = {"complete": True}


class Strict(BaseModel):
    """Every contract's reading rules: JSON types as written (no "12" for 12), finite floats, unknown
    fields of a newer writer ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, populate_by_name=True)
    WHAT: ClassVar[str] = "file"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        """A part (a record's profile) read from parsed JSON: a bad one names `where`, the part and the field."""
        return cls._validated(data, f"{where}: {cls.WHAT}" if where else cls.WHAT)

    @classmethod
    def _validated(cls, data: Any, where: str):
        try:
            return cls.model_validate(data, context=COMPLETE)
        except ValidationError as e:
            raise one_line(e, where, cls.WHAT) from None


def one_line(e: ValidationError, where: str, what: str) -> UsageError:
    """pydantic's first complaint as one line naming the file and the field (all missing fields at once)."""
    errors = e.errors(include_url=False)
    missing = [".".join(map(str, x["loc"])) for x in errors if x["type"] == "missing"]
    if missing:
        return UsageError(f"{where}: {what} lacks {', '.join(missing)}")
    err = errors[0]
    loc, msg = [str(x) for x in err["loc"] if x != "[key]"], err["msg"].removeprefix("Value error, ")
    if len(err["loc"]) == 2 and isinstance(err["loc"][1], int) and err["type"] in ("float_type", "int_type", "string_type"):
        kind = {"float_type": "numbers", "int_type": "integers", "string_type": "strings"}[err["type"]]
        return UsageError(f"{where}: {loc[0]} must be a list of {kind}")
    shown = repr(err.get("input"))
    shown = shown[:60] + ("..." if len(shown) > 60 else "")
    return UsageError(f"{where}: {'.'.join(loc) or what} {shown}: {msg}" if loc else f"{where}: {msg}")


class Contract(Strict):
    """A file's model: its `SCHEMA_KEY` field holds `SCHEMA` (or one of the `OLDER` versions it still reads)."""

    SCHEMA: ClassVar[str]
    SCHEMA_KEY: ClassVar[str] = "schema"
    OLDER: ClassVar[tuple[str, ...]] = ()  # earlier versions this one still reads (fields they lack: defaults)
    LIMIT_BYTES: ClassVar[int] = JSON_LIMIT_BYTES  # the largest such file `read` opens

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        where = where or cls.WHAT
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object ({cls.WHAT})")
        got = data.get(cls.SCHEMA_KEY)
        if got != cls.SCHEMA and got not in cls.OLDER:
            raise UsageError(f"{where} has {cls.SCHEMA_KEY} {got!r}, this pocketbert reads {cls.SCHEMA!r}: "
                             f"{'re-create it with this version' if got else 'not a ' + cls.WHAT}")
        return cls._validated(data, where)

    @classmethod
    def from_json(cls, text: str, where: str = ""):
        return cls.from_dict(cls.parse_json(text, where or cls.WHAT), where)

    @staticmethod
    def parse_json(text: str, where: str) -> Any:
        """The JSON of a contract's file (bad syntax, too deep: one line naming `where`), parsed here: the
        data goes from the text to its model, through no other module."""
        check_json_depth(text, where)
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise json_error(e, where) from None

    @classmethod
    def read(cls, path: str | Path):
        path = Path(path)  # a regular file of bounded size, checked before it is opened (never a pipe)
        return cls.from_json(read_text_bounded(path, cls.LIMIT_BYTES, cls.WHAT), str(path))

    def replace(self, complete: bool = False, **changes):
        """A copy with `changes`, checked as a read is (a record or spec built step by step); `complete`:
        its last step, so its rules on the whole hold too (an ok record has its samples)."""
        try:
            return type(self).model_validate({**dict(self), **changes}, context=COMPLETE if complete else None)
        except ValidationError as e:
            raise one_line(e, self.WHAT, self.WHAT) from None
