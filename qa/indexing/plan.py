"""Is the index current, and if not, what would ``qa index`` do: one staleness check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qa.store.manifest import SCHEMA_VERSION, ChunkingEntry, Manifest


@dataclass(slots=True)
class UpdatePlan:
    """What an incremental ``qa index`` would do, per document id (in seed order)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    full_reasons: list[str] = field(default_factory=list)  # why everything is re-embedded

    @property
    def to_embed(self) -> list[str]:
        return [*self.added, *self.changed]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.full_reasons)

    def lines(self, limit: int = 20) -> list[str]:
        """Human-readable summary, listing at most ``limit`` ids per kind."""
        out = [f"full rebuild: {reason}" for reason in self.full_reasons]
        for verb, ids in (("add", self.added), ("re-embed", self.changed)):
            if ids:
                out.append(f"would {verb} {len(ids)}: {_listing(ids, limit)}")
        if self.removed:
            out.append(f"would remove {len(self.removed)}: {_listing(self.removed, limit)}")
        return out


def _listing(ids: list[str], limit: int) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", … (+{len(ids) - limit} more)" if len(ids) > limit else "")


def settings_reasons(
    manifest: Manifest, chunking: ChunkingEntry, model_id: str, weights_sha256: str | None = None
) -> list[str]:
    """Why nothing in ``manifest``'s index can be reused: schema, model or chunking changed.

    Without ``weights_sha256`` only the model id is compared (no model is loaded).
    """
    reasons: list[str] = []
    if manifest.schema_version != SCHEMA_VERSION:
        reasons.append(f"index schema {manifest.schema_version} != {SCHEMA_VERSION}")
    if manifest.model.model_id != model_id:
        reasons.append(f"model changed ({manifest.model.model_id} -> {model_id})")
    elif weights_sha256 is not None and manifest.model.weights_sha256 != weights_sha256:
        reasons.append("model weights changed")
    if manifest.chunking != chunking:
        reasons.append(
            "chunking settings changed "
            f"({manifest.chunking.model_dump()} -> {chunking.model_dump()})"
        )
    return reasons


def document_reasons(manifest: Manifest, current: Mapping[str, str]) -> list[str]:
    """Which documents (``doc_id -> sha256``) were added, removed or changed since the build."""
    built = {doc_id: entry.sha256 for doc_id, entry in manifest.documents.items()}
    added = sorted(current.keys() - built.keys())
    removed = sorted(built.keys() - current.keys())
    changed = sorted(d for d in current.keys() & built.keys() if current[d] != built[d])
    reasons = []
    if added:
        reasons.append("new documents: " + ", ".join(added))
    if removed:
        reasons.append("removed documents: " + ", ".join(removed))
    if changed:
        reasons.append("changed documents: " + ", ".join(changed))
    return reasons


def make_plan(
    committed: Mapping[str, str], current: Sequence[tuple[str, str]], full_reasons: list[str]
) -> UpdatePlan:
    """Compare committed ``doc_id -> sha256`` with the current ``(doc_id, sha256)`` in order."""
    plan = UpdatePlan(full_reasons=list(full_reasons))
    for doc_id, sha256 in current:
        if plan.full_reasons:
            (plan.changed if doc_id in committed else plan.added).append(doc_id)
        elif doc_id not in committed:
            plan.added.append(doc_id)
        elif committed[doc_id] != sha256:
            plan.changed.append(doc_id)
        else:
            plan.unchanged.append(doc_id)
    plan.removed = sorted(set(committed) - {doc_id for doc_id, _ in current})
    return plan
