"""What every node of a journey document is made of: a strict, frozen model, and the field
types the entry and the steps share (:mod:`.entries`, :mod:`.steps`)."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,22}$")]
Scalar: TypeAlias = StrictBool | StrictInt | StrictFloat | StrictStr
EventName = Annotated[str, Field(min_length=1, max_length=256)]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def one_key(tags: tuple[str, ...]) -> Any:
    """A discriminator telling a node's kind by its one key among ``tags``."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = [k for k in tags if k in value]
            return found[0] if len(found) == 1 else None
        for name in tags:
            if name in type(value).model_fields:
                return name
        return None

    return tag
