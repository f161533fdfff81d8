"""What an import is asked to do (ImportOptions) and what it did (ImportResult).

The options come from the mapping form or the API, are stored as JSON on the
ImportJob and read back by the worker; `check` runs at both ends, so a bad value
is refused when the job is created rather than found when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.datasets.mapping import Mapping

POLICIES = (
    "valid",
    "all",
    "dry_run",
)  # import the valid lines | import nothing if any is bad | validate only


@dataclass
class ImportOptions:
    mapping: Mapping
    name: str = ""
    kind: str = "train"
    policy: str = "valid"
    container: str = ""  # empty: sniffed from the file
    target_dataset_id: int | None = None  # merge: a new version of this dataset
    description: str = ""
    message: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportOptions:
        mapping = Mapping.from_dict(data.get("mapping") or {})
        opts = cls(
            mapping=mapping,
            **{k: v for k, v in data.items() if k != "mapping" and k in cls.__dataclass_fields__},
        )
        opts.check()
        return opts

    def check(self) -> None:
        if isinstance(self.target_dataset_id, str) and self.target_dataset_id.strip().isdigit():
            self.target_dataset_id = int(self.target_dataset_id)
        if self.target_dataset_id is not None and (
            not isinstance(self.target_dataset_id, int) or isinstance(self.target_dataset_id, bool)
        ):
            raise ValueError("target_dataset_id must be a dataset id")
        for key in ("name", "kind", "policy", "container", "description", "message"):
            if not isinstance(getattr(self, key), str):
                raise ValueError(f"{key} must be a string")
        if self.kind not in ("train", "eval"):
            raise ValueError(f"kind must be train or eval, not {self.kind!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.target_dataset_id is None and not self.name.strip():
            raise ValueError("a dataset name is required")
        if len(self.name) > 200:
            raise ValueError("the dataset name is longer than 200 characters")
        if self.mapping.shape == "fields" and not self.mapping.prompt:
            raise ValueError("map at least one field to the prompt")
        if self.mapping.shape == "fields" and self.kind == "train" and not self.mapping.answer:
            raise ValueError("map a field to the answer (or import as an eval set)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping.to_dict(),
            "name": self.name,
            "kind": self.kind,
            "policy": self.policy,
            "container": self.container,
            "target_dataset_id": self.target_dataset_id,
            "description": self.description,
            "message": self.message,
        }


@dataclass
class ImportResult:
    status: str  # succeeded | rejected | validated
    dataset_id: int | None = None
    version_id: int | None = None
    version: int | None = None
    n_ok: int = 0
    n_bad: int = 0
    report: dict[str, Any] = field(default_factory=dict)
