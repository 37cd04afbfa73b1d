"""Paper mode: the DistilBERT paper's speed study (Sanh et al. 2019), repeated here.

Table 3: parameters and seconds for a full pass of GLUE STS-B dev (batch 1, CPU) for BERT-base and
DistilBERT; paper: 110M / 668 s vs 66M / 410 s, time ratio 0.61 (DistilBERT 60% faster).
On-device QA study: DistilBERT answers SQuAD questions 71% faster than BERT-base on an iPhone 7
Plus, tokenization excluded. Both are printed side by side with ours, one row per
(runtime, precision, shape): records for each model come from the same machine and settings.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

from bench.harness import run_bench
from bench.records import load_records
from bench.report import render_report
from pocketbert.common import write_text_atomic
from pocketbert.contracts import Record
from pocketbert.escape import markdown as md
from pocketbert.record_parts import Machine
from pocketbert.tables import markdown_table

PAPER = {"bert_params_M": 110, "distil_params_M": 66, "bert_stsb_s": 668, "distil_stsb_s": 410,
         "stsb_ratio": 0.61, "qa_faster": 0.71}
MODELS = ("bert-base", "distilbert-base")
STSB_SEQ_LEN = 128  # GLUE's max_seq_length in the reference fine-tuning scripts
SQUAD_SEQ_LEN = 384  # SQuAD window (doc stride 128)
SQUAD_DEFAULT_LIMIT = 100  # questions: BERT-base at 384 costs ~0.5 s each on 2 cores


def run_paper(cfg, stsb: str | None, squad: str | None, log=print, device=None) -> Path:
    """Run both studies for BERT-base and DistilBERT; write and print paper.md. Returns the run folder."""
    run_id = cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-paper"
    root = Path(cfg.out) / run_id
    base = dataclasses.replace(cfg, models=list(MODELS), report=False, bundles=[],
                               bundle_cache=cfg.bundle_cache or Path(cfg.out) / "bundles")
    log(f"Table 3 on {'STS-B dev ' + stsb if stsb else 'the synthetic stand-in (no --stsb)'}")
    run_bench(dataclasses.replace(base, workloads=[f"stsb:{stsb}" if stsb else "synthetic"],
                                  seq_len=STSB_SEQ_LEN, run_id=f"{run_id}/table3"), device=device, log=log)
    log(f"QA per-question study on {'SQuAD ' + squad if squad else 'the synthetic stand-in (no --squad)'}")
    run_bench(dataclasses.replace(base, workloads=[f"squad:{squad}" if squad else "synthetic"],
                                  seq_len=SQUAD_SEQ_LEN, limit=cfg.limit or SQUAD_DEFAULT_LIMIT,
                                  run_id=f"{run_id}/qa"), device=device, log=log)
    log(write_paper_report(root))
    return root


def write_paper_report(root: Path) -> str:
    """report.md/results.csv/plots plus paper.md for a paper-mode folder (its table3/ and qa/ records)."""
    render_report([root], root)
    records = load_records([root])
    text = paper_markdown([r for r in records if Path(r.source).parent.name == "table3"],
                          [r for r in records if Path(r.source).parent.name == "qa"])
    write_text_atomic(Path(root) / "paper.md", text)  # whole or not at all (a full disk leaves no half file)
    return text


def _pairs(records: list[Record]) -> list[tuple[tuple, Record, Record]]:
    """(runtime, precision, shape) -> (BERT record, DistilBERT record), both measured and trusted (a
    noisy record would put the paper's claim in the table reversed: the machine, not the model)."""
    by = {}
    for r in records:
        if r.status == "ok" and r.model in MODELS and not r.trust.noisy:
            by.setdefault((r.runtime, r.precision, r.shape), {})[r.model] = r
    return [(k, v[MODELS[0]], v[MODELS[1]]) for k, v in sorted(by.items()) if len(v) == 2]


def paper_markdown(table3: list[Record], qa: list[Record]) -> str:
    p = PAPER
    rows = [["paper (CPU, 2019)", "PyTorch", "fp32", "–", 1500, f"{p['bert_params_M']}M", p["bert_stsb_s"],
             f"{p['distil_params_M']}M", p["distil_stsb_s"], f"{p['stsb_ratio']:.2f}",
             f"{p['bert_stsb_s'] / p['distil_stsb_s']:.2f}x"]]
    for (rt, prec, shape), b, d in _pairs(table3):
        rows.append([f"ours ({md(b.workload)})", md(rt), md(prec), md(shape), b.n_items, f"{b.parameters.total / 1e6:.1f}M",
                     f"{b.total_model_s:.1f}", f"{d.parameters.total / 1e6:.1f}M", f"{d.total_model_s:.1f}",
                     f"{d.total_model_s / b.total_model_s:.2f}", f"{b.total_model_s / d.total_model_s:.2f}x"])
    lines = ["## Table 3: STS-B dev full pass, batch 1 (paper vs pocketbert)", "",
             markdown_table(["", "runtime", "precision", "shape", "items", "BERT-base params", "BERT-base s",
                             "DistilBERT params", "DistilBERT s", "DistilBERT/BERT time", "DistilBERT speed-up"], rows,
                            "llllrrrrrrr")]
    rows = [["paper (iPhone 7 Plus)", *["–"] * 8, f"{p['qa_faster']:.0%}"]]
    for (rt, prec, shape), b, d in _pairs(qa):
        bs, ds = b.stats.latency_ms, d.stats.latency_ms
        rows.append([f"ours ({md(b.workload)})", md(rt), md(prec), md(shape), b.n_items, f"{bs.mean:.1f}", f"{bs.p50:.1f}",
                     f"{ds.mean:.1f}", f"{ds.p50:.1f}", f"{bs.mean / ds.mean - 1:.0%}"])
    lines += ["", "## On-device QA: per-question latency, tokenization excluded (paper vs pocketbert)", "",
              markdown_table(["", "runtime", "precision", "shape", "questions", "BERT-base mean ms", "BERT-base p50 ms",
                              "DistilBERT mean ms", "DistilBERT p50 ms", "DistilBERT faster by"], rows,
                             "llllrrrrrr")]

    noisy = [r for r in table3 + qa if r.status == "ok" and r.trust.noisy]
    if noisy:
        lines += ["", "Left out as noisy (other processes used the CPU, or its pace changed, while they ran; re-run quiet or with --rounds): "
                  + "; ".join(md(f"{r.model} {r.runtime}-{r.precision} {r.shape} ({r.workload}): "
                                 + "; ".join(r.trust.reasons)) for r in noisy)]
    first = next(iter(table3 + qa), None)
    m = first.machine if first else Machine()
    lines += ["", f"Machine: {md(m.cpu_model or '?')}, {m.physical_cores or '?'} cores, "
              f"threads {first.threads if first else '?'}, load at start {m.load_avg_1m}. "
              "Seconds are model time summed over items (tokenization excluded, as in the paper).", ""]
    return "\n".join(lines)
