"""Delegation coverage at export: the one bound below which a file's fast-path share is worth a
warning, and the warning itself. What the fast path is and how it is counted is each export
target's own function (export/targets/*: `ExportResult.delegation`, a pocketbert.contracts.Delegation)."""

from __future__ import annotations

import re

from pocketbert.contracts import Delegation

# The share of operators a delegate-partitioned file (ExecuTorch + XNNPACK) should keep in its delegate.
# Our ExecuTorch exports keep 82-87% there (bert-tiny fp32 / int8: only LayerNorm, the embedding gathers
# and the output split run on portable kernels); a graph the partitioner largely refused (attention cut
# out by a dynamic reshape: 51 partitions in DistilBERT before xnnpack_attention, or no partitioner: 0%)
# runs its portable kernels single-threaded in between, the cliff worth a line at export. ONNX Runtime's
# CPU provider runs every node itself (no fallback, no cliff), so ONNX files report their fused share
# and the mobile providers' shares without a warning.
MIN_DELEGATED_PCT = 50.0

PLUMBING = {"getitem", "sym_size", "executorch_call_delegate"}  # graph bookkeeping, not operators


def op_kind(node_name: str) -> str:
    """An edge-graph node's operator kind from its name: "aten_linear_default_3" -> "linear"."""
    name = re.sub(r"_\d+$", "", node_name)
    return re.sub(r"_default$", "", name.removeprefix("aten_")) or name


def coverage_warning(delegation: Delegation | None, bound: float = MIN_DELEGATED_PCT) -> str:
    """One line when a delegate-partitioned file keeps less than `bound` % of its operators in the
    delegate, naming the kinds left outside; '' otherwise (and for files without partitions)."""
    if delegation is None or delegation.partitions is None or delegation.delegated_pct >= bound:
        return ""
    worst = sorted(delegation.other_by_kind.items(), key=lambda kv: -kv[1])[:4]
    return (f"only {delegation.delegated_pct:.0f}% of the operators ({delegation.delegated_ops} of "
            f"{delegation.delegated_ops + delegation.other_ops}) run in the {delegation.fast_path}, in "
            f"{delegation.partitions} partition(s) (bound {bound:.0f}%); outside: "
            + ", ".join(f"{k} x{n}" for k, n in worst))


def delegated_label(delegation: dict | None) -> str:
    """A manifest's delegation as a table cell: "86% (7 partitions)", "24% fused", or "-"."""
    if not delegation:
        return "-"
    parts = delegation.get("partitions")
    return (f"{delegation['delegated_pct']:.0f}%"
            + (f" ({parts} partition{'s' if parts != 1 else ''})" if parts is not None else " fused"))


def delegation_fields(delegation: Delegation | None) -> dict:
    """The record fields (pocketbert.contracts.Record) a bundle's delegation gives its benchmark rows."""
    return {} if delegation is None else {"delegated_pct": delegation.delegated_pct,
                                          "delegate_partitions": delegation.partitions}
