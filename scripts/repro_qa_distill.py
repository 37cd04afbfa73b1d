#!/usr/bin/env python
"""Reproduce DistilBERT (D) on SQuAD offline: distil question-answering students from a trained
6-layer teacher, export them with the F1 gate, time teacher vs students, and write one table.

Teacher: ../shared/models/minilm-l6-squad12 (6 layers, hidden 384, fine-tuned on SQuAD v1.1 dev
articles 1-12). Students (DistilBERT, hidden 384), every one copied from teacher layers
floor(i*6/M) (3 layers: 0,2,4, the paper's one of two):
  l3            the headline: task loss on the teacher's own gold (dev articles 1-12) + KL to the
                teacher's T-softened start/end distributions, on those windows and on SQuAD train
                articles 1-11 used as *unlabelled* transfer data (soft labels only: the student sees
                no gold the teacher did not see). The teacher's logits are computed once (cached).
  l2, l4        the same recipe, 2 and 4 layers: the curve.
  l3-finetuned  the same 3-layer student fine-tuned on the gold alone (no teacher): the gain from
                distillation.
  l3-copied     the copied layers, no training.
Evaluation: dev articles 13-24 (unseen by teacher and students), official EM/F1, 384/128 windows.
Then each trained student and the teacher are exported to ExecuTorch and ONNX, fp32 and int8 (the
teacher and l3 also ONNX int8 guided and blockwise), with the export's SQuAD gate (int8 within
--max-f1-drop F1 of fp32 and --min-identical-answers), and benchmarked in one `pocketbert bench`
run (batch 1, 2 threads, real length), whose records carry F1 next to latency.

Usage (from the repo root):
    python scripts/repro_qa_distill.py --shared ../shared --out runs/qa
Re-running resumes: a finished step is skipped, a killed training run continues from its last
checkpoint. Results: OUT/results.json and OUT/table.md (also printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from export.bundle import read_manifest  # noqa: E402 - after the path set-up above
from pocketbert.common import sha256_path, write_json  # noqa: E402

TEACHER = "models/minilm-l6-squad12"
GOLD = "data/squad/dev-v1.1-first12.json"  # the teacher's own training data
TRANSFER = "data/squad/train-v1.1-articles1-11.json"  # unseen by the teacher: soft labels only
EVAL = "data/squad/dev-v1.1-articles13-24.json"  # unseen by teacher and students
TEACHER_LAYERS = 6
# The recipe (one source): the teacher's own fine-tuning scale (lr 1e-4, effective batch 32), four
# passes over gold + transfer windows (with two, the KD loss was still falling at the end); T = 2 and
# equal task/KD weights, the task-mode defaults.
RECIPE = ["--epochs", "4", "--batch-size", "16", "--grad-accum", "2", "--lr", "1e-4", "--save-every", "20"]


@dataclass(frozen=True)
class Student:
    name: str
    layers: int
    distil: bool = True  # False: fine-tuned on the gold alone
    train: bool = True  # False: the copied layers as they are
    extra: list[str] = field(default_factory=list)
    exports: tuple[str, ...] | None = None  # EXPORTS keys built for it (None: all)

    @property
    def copied(self) -> str:
        return ",".join(str(math.floor(i * TEACHER_LAYERS / self.layers)) for i in range(self.layers))


# the curve's points (depth, no teacher) are compared in size, F1 and speed on the plain builds; the
# int8 builds that search (guided) or trade speed for answers (blockwise) are measured on the headline
# student and the teacher
CURVE_EXPORTS = ("fp32", "executorch-int8", "onnx-int8")
STUDENTS = {s.name: s for s in [
    Student("l3", 3), Student("l3-copied", 3, train=False),
    Student("l3-finetuned", 3, distil=False, exports=CURVE_EXPORTS),
    Student("l2", 2, exports=CURVE_EXPORTS), Student("l4", 4, exports=CURVE_EXPORTS)]}


def log(msg: str) -> None:
    print(f"[repro-qa {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pocketbert(*args: str) -> int:
    """Run a pocketbert command in a child process (its own progress bars and one-line errors)."""
    return subprocess.call([sys.executable, "-m", "pocketbert.cli", *args], cwd=ROOT)


# ----------------------------------------------------------------------------- 1. students

def train_student(s: Student, shared: Path, out: Path) -> dict | None:
    folder = out / "students" / s.name
    if (folder / "metrics.json").exists():
        log(f"{s.name}: done before ({folder / 'metrics.json'})")
        return json.loads((folder / "metrics.json").read_text())
    if not s.train:
        return score_copied(s, shared, out)
    args = ["distill", "--task", "question-answering", "--teacher", str(shared / TEACHER),
            "--train-file", str(shared / GOLD), "--eval-file", str(shared / EVAL),
            "--student-layers", s.copied, "--teacher-cache", str(out / "teacher-cache"),
            "--out", str(folder), *RECIPE, *s.extra]
    if s.distil:
        args += ["--transfer-file", str(shared / TRANSFER)]
    else:
        args += ["--alpha-kd", "0"]
    if (folder / "checkpoints" / "latest.json").exists():
        args.append("--resume")
        log(f"{s.name}: resuming from {folder / 'checkpoints'}")
    else:
        log(f"{s.name}: {s.layers} layers (teacher layers {s.copied}), "
            + ("distilled on gold + transfer data" if s.distil else "fine-tuned on gold only"))
    t0 = time.time()
    if pocketbert(*args) != 0:
        log(f"{s.name}: training failed (see above); re-run to resume")
        return None
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["wall_s"] = time.time() - t0
    return metrics


def score_copied(s: Student, shared: Path, out: Path) -> dict:
    """The layers-copied student, no training: scored like the others."""
    from distill.task import (TaskConfig, build_task_student, evaluate_task, load_task_data,
                              load_task_teacher)
    from distill.task_train import cached_teacher_scores
    from pocketbert.outputs import atomic_output_dir

    folder = out / "students" / s.name
    cfg = TaskConfig(task="question-answering", teacher=str(shared / TEACHER), train_file=str(shared / GOLD),
                     eval_file=str(shared / EVAL), student_layers=s.copied, out=str(folder),
                     teacher_cache=str(out / "teacher-cache"))
    teacher, tok, teacher_type = load_task_teacher(cfg)
    student, copied = build_task_student(cfg, teacher, teacher_type, None)
    ev = load_task_data(cfg, cfg.eval_file, tok, train=False)
    metrics = {"task": cfg.task, "student_layers": copied, "train_seconds": 0.0,
               "teacher": cached_teacher_scores(cfg, teacher, teacher_type, ev),
               "student": evaluate_task(cfg, student.eval(), "distilbert", ev, desc=f"scoring {s.name}")}
    metrics["f1_retention_pct"] = 100 * metrics["student"]["f1"] / metrics["teacher"]["f1"]
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output_dir(folder / "student", overwrite=True) as tmp:
        student.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    write_json(folder / "metrics.json", metrics)
    return metrics


# ----------------------------------------------------------------------------- 2. exports

# what each export call builds: fp32 pair together, each int8 alone (an export writes all its
# bundles or none, so one int8 failing its gate must not take the others with it)
# (onnx-int8-guided: plain ONNX int8 keeps ~80% of answers; guided int8 keeps the layers that cost
# answers most in fp32, chosen on the teacher's own training data, never on the eval articles;
# onnx-int8-blockwise: activations scaled per token and block of 32 instead of one scale per MatMul
# input, which one outlier feature coarsens for every token: export/targets/onnx.py BLOCKWISE)
DYNAMIC = ["--int8-mode", "dynamic"]
EXPORTS = {"fp32": (["executorch", "onnx"], "fp32", []), "executorch-int8": (["executorch"], "int8", DYNAMIC),
           "onnx-int8": (["onnx"], "int8", DYNAMIC),
           "onnx-int8-guided": (["onnx"], "int8", [*DYNAMIC, "--int8-guided", "GOLD"]),
           "onnx-int8-blockwise": (["onnx"], "int8", ["--int8-mode", "blockwise"])}


def export(name: str, model: Path, shared: Path, out: Path, args, kinds: tuple[str, ...] | None = None) -> dict:
    """ExecuTorch + ONNX, fp32 + int8 (dynamic; ONNX also guided and blockwise), each gated on
    SQuAD F1 and identical answers against PyTorch fp32. An int8 that fails its gate is exported
    again without the gate, so its figures are still measured and shown (marked)."""
    root = out / "bundles" / name
    if not args.report_only:
        stale_bundles(root, model, name)
    todo = [] if args.report_only else [(k, v) for k, v in EXPORTS.items() if kinds is None or k in kinds]
    for key, (targets, precision, extra) in todo:
        extra = [f"squad:{shared / GOLD}" if x == "GOLD" else x for x in extra]
        for gated in (True, False):
            folder = root / (key if gated else f"{key}-ungated")
            if gated and (root / f"{key}.gate-failed").exists():
                continue  # failed its gate before: the ungated export holds its figures
            if folder.exists():
                code = 0
            else:
                log(f"export {name} {key}{'' if gated else ' without the gate (it failed the gate)'}")
                bound = [str(args.max_f1_drop), str(args.min_identical)] if gated else ["100", "0"]
                code = pocketbert("export", "--model", str(model), "--task", "question-answering",
                                  "--target", *targets, "--precision", precision,
                                  "--seq-len", "384", "--eval-data", f"squad:{shared / EVAL}",
                                  "--eval-questions", str(args.eval_questions), "--max-f1-drop", bound[0],
                                  "--min-identical-answers", bound[1], *extra, "--out", str(folder))
                if code == 1 and gated:
                    (root / f"{key}.gate-failed").parent.mkdir(parents=True, exist_ok=True)
                    (root / f"{key}.gate-failed").write_text("the export's F1 gate failed: see the -ungated bundle\n")
            if gated and not (root / f"{key}.gate-failed").exists():
                break
    if not args.report_only and root.is_dir():
        (root / SOURCE_STAMP).write_text(weights_sha256(model) + "\n")
    bundles = {}
    for manifest in sorted(root.glob("*/*/manifest.json")):
        m = read_manifest(manifest.parent, verify=False)
        export = manifest.parent.parent.name.removesuffix("-ungated")
        kind = manifest.parent.name if export == "fp32" else export
        t = m.task_eval or {}
        bundles[kind] = {"path": str(manifest.parent), "bytes": m.files[m.model_file].bytes,
                         "gate": "failed" if (root / f"{kind}.gate-failed").exists() else "passed",
                         "f1": (t.get("export") or {}).get("f1"), "f1_fp32": (t.get("fp32_pytorch") or {}).get("f1"),
                         "identical_answers": t.get("identical_answers")}
    return bundles


def app_command(bundles: dict, student: str = "l3") -> str | None:
    """The command that puts the student's bundles that passed their gate into the Android app: the
    export --out folders holding them (an ungated re-export of a failed int8 has gate "failed")."""
    outs = sorted({str(Path(b["path"]).parent) for b in (bundles.get(student) or {}).values() if b["gate"] == "passed"})
    return f"pocketbert android bundle {' '.join(outs)}" if outs else None


SOURCE_STAMP = "source.sha256"  # in bundles/MODEL: the weights they were exported from


def weights_sha256(model: Path) -> str:
    """sha256 of a model folder's weight files: a retrained student is a different source."""
    files = sorted(model.glob("*.safetensors")) or sorted(model.glob("*.bin"))
    return sha256_path(files[0]) if len(files) == 1 else hashlib.sha256(
        "".join(sha256_path(f) for f in files).encode()).hexdigest()


def stale_bundles(root: Path, model: Path, name: str) -> None:
    """Bundles of other weights (the student was trained again) are removed, not reused: each export
    step keys on its folder's existence."""
    stamp = root / SOURCE_STAMP
    if root.is_dir() and (not stamp.exists() or stamp.read_text().strip() != weights_sha256(model)):
        log(f"{name}: its bundles were built from other weights: exporting again")
        shutil.rmtree(root)


# ----------------------------------------------------------------------------- 3. benchmark

def optimum_teacher(shared: Path, out: Path, args) -> list[str]:
    """optimum-cli's ONNX files of the teacher (fp32, int8 per-tensor and per-channel), when its
    virtualenv (transformers < 5) is there: `scripts/compare_peers.py` makes it."""
    cli = args.optimum_venv / "bin" / "optimum-cli"
    if not cli.exists():
        log(f"optimum: no virtualenv at {args.optimum_venv} (scripts/compare_peers.py creates one): "
            "its files are left out")
        return []
    sys.path.insert(0, str(ROOT / "scripts"))
    from compare_peers import cpu_isas, peer_folders

    return [str(p) for p in peer_folders(cli, shared / TEACHER, out / "peers", cpu_isas())]


def bench(bundles: dict[str, dict], shared: Path, out: Path, args) -> list[dict]:
    run = out / "bench" / "qa"
    sources = {name: (out / "bundles" / name / SOURCE_STAMP).read_text().strip() for name in bundles
               if (out / "bundles" / name / SOURCE_STAMP).exists()}
    if not args.report_only and run.is_dir() and _read_json(run / "sources.json") != sources:
        log("bench: the bundles changed since the last benchmark: timing them again")
        shutil.rmtree(run)
    if not any(run.glob("*.json")) and not args.report_only:
        paths = [b["path"] for model in bundles.values() for b in model.values()] + optimum_teacher(shared, out, args)
        log(f"bench: {len(paths)} bundles, first {args.bench_questions} questions of {EVAL}, 2 threads, "
            f"real length, {args.rounds} rounds")
        pocketbert("bench", "--bundle", *paths, "--workload", f"squad:{shared / EVAL}", "--limit",
                   str(args.bench_questions), "--threads", "2", "--shape", "dynamic", "--rounds", str(args.rounds),
                   "--out", str(out / "bench"), "--run-id", "qa")
        if run.is_dir():
            (run / "sources.json").write_text(json.dumps(sources, indent=1) + "\n")
    recs = []
    for p in sorted(run.glob("*.json")):
        if p.name == "sources.json":
            continue
        r = json.loads(p.read_text())
        if isinstance(r, dict) and r.get("status") == "ok":
            recs.append(r)
    return recs


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- 4. the table

def _ms(r: dict) -> float:
    """Mean model time per question (windows summed), ms: what a user waits for, on average."""
    return 1e3 * r["total_model_s"] / r["n_items"]


def _label(r: dict, out: Path) -> str:
    b = Path(r["bundle"]).resolve()
    if (out / "peers") in b.parents:
        return f"teacher, optimum {b.parent.name.removeprefix('optimum-')}"
    if (out / "bundles") in b.parents:  # bundles/MODEL/EXPORT/KIND
        model, export, *_ = b.relative_to(out / "bundles").parts
        kind = b.name if export == "fp32" else export.removesuffix("-ungated")  # onnx-int8 vs onnx-int8-guided
        return f"{model} {kind}" + (" (failed its gate)" if export.endswith("-ungated") else "")
    return b.name


def table(results: dict, recs: list[dict], out: Path) -> str:
    """Two tables from the results and one benchmark run's records: the curve (scores on every
    eval question; mean ms per question from the bench), then every benchmarked file."""
    teacher = results["teacher"]
    by_bundle = {str(Path(r["bundle"]).resolve()): r for r in recs}

    def rec(model: str, kind: str) -> dict | None:
        b = results["bundles"].get(model, {}).get(kind)
        return by_bundle.get(str(Path(b["path"]).resolve())) if b else None

    cell = lambda v, f="{:.1f}": f.format(v) if v is not None else "-"  # noqa: E731
    lines = ["| model | layers | params (M) | ONNX MB fp32 / int8 | EM | F1 | % of teacher F1 | "
             "ms/question ExecuTorch fp32 / int8 | ms/question ONNX fp32 / int8 | speed-up vs teacher (ET int8) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    t8 = rec("teacher", "executorch-int8")
    rows = [("teacher", TEACHER_LAYERS, teacher)] + [(n, STUDENTS[n].layers, m["student"])
                                                      for n, m in results["students"].items() if m]
    for name, layers, score in rows:
        b = results["bundles"].get(name, {})
        size = " / ".join(f"{b[k]['bytes'] / 1e6:.1f}" if k in b else "-" for k in ("onnx-fp32", "onnx-int8"))
        ms = {k: (_ms(r) if (r := rec(name, k)) else None) for k in
              ("executorch-fp32", "executorch-int8", "onnx-fp32", "onnx-int8")}
        s8 = rec(name, "executorch-int8")
        speed = f"{_ms(t8) / _ms(s8):.2f}x" if t8 and s8 else "-"
        lines.append(f"| {name} | {layers} | {cell(results['params_m'].get(name))} | {size} | "
                     f"{score['exact_match']:.2f} | {score['f1']:.2f} | {100 * score['f1'] / teacher['f1']:.1f}% | "
                     f"{cell(ms['executorch-fp32'])} / {cell(ms['executorch-int8'])} | "
                     f"{cell(ms['onnx-fp32'])} / {cell(ms['onnx-int8'])} | {speed} |")
    gates = [(m, k, b) for m, kinds in results["bundles"].items() for k, b in sorted(kinds.items())
             if b.get("f1") is not None and "int8" in k]
    if gates:
        lines += ["", "int8 vs fp32, the export's gate (SQuAD F1 and answers identical to PyTorch fp32 on the "
                  "first eval questions):", "", "| model | bundle | F1 fp32 -> int8 | identical answers | gate |",
                  "|---|---|---:|---:|---|"]
        for m, k, b in gates:
            lines.append(f"| {m} | {k} | {b['f1_fp32']:.2f} -> {b['f1']:.2f} | {b['identical_answers']:.1%} | "
                         f"{b['gate']} |")
    if recs:
        n = recs[0]["n_items"]
        lines += ["", f"One benchmark run ({n} questions, batch 1, {recs[0]['threads']} threads, real length, "
                  f"{recs[0].get('rounds', 1)} rounds in rotated order; F1 on those {n} questions):", "",
                  "| file | runtime | precision | F1 | ms/question (mean) | p50 ms | trust |",
                  "|---|---|---|---:|---:|---:|---|"]
        for r in sorted(recs, key=_ms):
            q = (r.get("answer_quality") or {}).get("f1")
            noisy = (r.get("trust") or {}).get("noisy")
            lines.append(f"| {_label(r, out)} | {r['runtime']} | {r['precision']} | {cell(q, '{:.2f}')} | "
                         f"{_ms(r):.1f} | {r['stats']['latency_ms']['p50']:.1f} | {'noisy' if noisy else 'ok'} |")
    return "\n".join(lines)


def params_m(folder: Path) -> float | None:
    from safetensors import safe_open

    f = folder / "model.safetensors"
    if not f.exists():
        return None
    with safe_open(str(f), "np") as st:
        return sum(int(math.prod(st.get_slice(k).get_shape())) for k in st.keys()) / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared/ folder")
    p.add_argument("--out", type=Path, default=Path("runs/qa"))
    p.add_argument("--students", nargs="+", default=["l3", "l3-copied", "l3-finetuned", "l2", "l4"],
                   choices=list(STUDENTS), help="which students, in this order (default: all)")
    p.add_argument("--eval-questions", type=int, default=1000, help="questions of the export's F1 gate")
    p.add_argument("--max-f1-drop", type=float, default=0.5, help="int8 gate: F1 points vs fp32")
    p.add_argument("--min-identical", type=float, default=0.9, help="int8 gate: share of identical answers")
    p.add_argument("--bench-questions", type=int, default=300, help="questions per benchmarked bundle")
    p.add_argument("--rounds", type=int, default=3, help="bench rounds (rotated order)")
    p.add_argument("--no-export", action="store_true", help="students and scores only")
    p.add_argument("--report-only", action="store_true", help="train, export and time nothing: the tables "
                   "from what OUT holds")
    p.add_argument("--export", nargs="+", choices=list(STUDENTS), metavar="STUDENT",
                   help="students to export and benchmark with the teacher (default: every trained one)")
    p.add_argument("--optimum-venv", type=Path, default=Path.home() / ".cache/pocketbert/optimum-venv",
                   help="optimum's virtualenv: its int8 files of the teacher join the benchmark when present")
    args = p.parse_args()
    shared = args.shared.resolve()
    missing = [x for x in (TEACHER, GOLD, TRANSFER, EVAL) if not (shared / x).exists()]
    if missing:
        print(f"repro-qa: {shared} lacks {', '.join(missing)}: pass --shared", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results: dict = {"students": {}, "bundles": {}, "params_m": {"teacher": params_m(shared / TEACHER)}}
    for name in args.students:
        done_before = out / "students" / name / "metrics.json"
        if args.report_only:
            results["students"][name] = json.loads(done_before.read_text()) if done_before.exists() else None
        else:
            results["students"][name] = train_student(STUDENTS[name], shared, out)
    done = {n: m for n, m in results["students"].items() if m}
    if not done:
        log("no student finished")
        return 1
    results["teacher"] = next(iter(done.values()))["teacher"]
    for n in done:
        results["params_m"][n] = params_m(out / "students" / n / "student")
    recs = []
    if not args.no_export:
        models = {"teacher": shared / TEACHER, **{n: out / "students" / n / "student" for n in done
                                                 if STUDENTS[n].train and (args.export is None or n in args.export)}}
        for name, model in models.items():
            results["bundles"][name] = export(name, model, shared, out, args,
                                              STUDENTS[name].exports if name in STUDENTS else None)
        recs = bench(results["bundles"], shared, out, args)
    results["wall_s"] = time.time() - t0
    if args.report_only and (out / "results.json").exists():  # the run's own time, not this re-render's
        results["wall_s"] = json.loads((out / "results.json").read_text()).get("wall_s", results["wall_s"])
    md = table(results, recs, out)
    (out / "table.md").write_text(md + "\n")
    write_json(out / "results.json", results)
    print(md)
    log(f"done in {results['wall_s'] / 60:.1f} min: {out / 'table.md'}, {out / 'results.json'}")
    if command := app_command(results["bundles"]):
        log(f"the student into the Android app: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
