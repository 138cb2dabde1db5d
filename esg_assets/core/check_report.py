"""The day's check report: each asset check's outcome as the day's files record it (summary and manifest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

Number = str | int | float | bool


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check of the day: which, on what, passed or failed, how bad, and its numbers."""

    name: str  # failure_rate, completeness, file_format, reconciliation (core/keys.py)
    asset: str  # the asset it checks
    passed: bool
    severity: str  # Dagster's AssetCheckSeverity: ERROR or WARN
    blocking: bool  # a failure publishes nothing
    description: str
    metadata: Mapping[str, Number]  # its numbers and texts, as recorded in Dagster

    def to_document(self) -> dict[str, Any]:
        return {**asdict(self), "metadata": dict(self.metadata)}

    @classmethod
    def from_document(cls, document: Any) -> CheckOutcome:
        """Read back one check as written by ``to_document``; raises ValueError for anything else."""
        if not isinstance(document, Mapping) or set(document) != {
            field for field in cls.__dataclass_fields__
        }:
            raise ValueError(f"a check must have exactly the fields {sorted(cls.__dataclass_fields__)}")
        metadata = document["metadata"]
        if not isinstance(metadata, Mapping) or not all(
            isinstance(value, (str, int, float, bool)) for value in metadata.values()
        ):
            raise ValueError("a check's metadata must map names to texts, numbers or booleans")
        return cls(
            name=str(document["name"]),
            asset=str(document["asset"]),
            passed=bool(document["passed"]),
            severity=str(document["severity"]),
            blocking=bool(document["blocking"]),
            description=str(document["description"]),
            metadata={str(name): value for name, value in metadata.items()},
        )
