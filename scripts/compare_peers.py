"""pocketbert exports vs optimum-cli's files of the same weights, timed through one harness.

Not CI (optimum needs transformers < 5, so it gets its own virtualenv, created on first use):

  python scripts/compare_peers.py --work runs/peers --threads 2 \
      --eval squad:../shared/data/squad/dev-v1.1-articles13-24.json

Steps: the model (a preset is saved as an HF folder, same seed) -> optimum-cli export onnx (fp32)
-> optimum-cli onnxruntime quantize --avx2 / --avx512_vnni, per-tensor and --per_channel ->
pocketbert exports (onnx fp32/int8, executorch fp32/int8/8da4w) -> every file timed on the same
inputs with its own input names: `fixed` = one SQuAD question padded to 384 (median of calls),
`real` = the first questions of a SQuAD file at their real length (mean ms per question). Calls are
interleaved file by file in rotated order, so machine noise lands on every file alike; each
round gives one figure per file and the table shows the median of rounds. With --eval, a trained
QA model's files are also scored: SQuAD F1 and % answers identical to PyTorch fp32.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEER_PINS = ["optimum-onnx[onnxruntime]==0.1.0", "onnxruntime==1.32.0", "transformers<5"]
TORCH_PIN = "torch==2.13.0"


def ensure_venv(venv: Path) -> Path:
    """The optimum virtualenv (torch first with the exact pin, so optimum does not pull another)."""
    cli = venv / "bin" / "optimum-cli"
    if not cli.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q"]
        subprocess.run(pip + [TORCH_PIN], check=True)
        subprocess.run(pip + PEER_PINS, check=True)
    return cli


def hf_folder(model: str, tokenizer: str | None, out: Path, seed: int) -> Path:
    """A folder optimum can read: the model itself, or a preset saved with its seed."""
    if Path(model).is_dir():
        return Path(model)
    if not (out / "config.json").exists():
        from pocketbert.models import build_preset, load_tokenizer

        build_preset(model, "question-answering", seed=seed).save_pretrained(out)
        load_tokenizer(tokenizer).save_pretrained(out)
    return out


def peer_files(cli: Path, folder: Path, work: Path, isas: list[str]) -> dict[str, Path]:
    files = {}
    fp32 = work / "optimum-fp32"
    if not (fp32 / "model.onnx").exists():
        subprocess.run([str(cli), "export", "onnx", "--model", str(folder), "--task",
                        "question-answering", "--opset", "18", str(fp32)], check=True)
    files["optimum onnx fp32"] = fp32 / "model.onnx"
    for isa in isas:
        for per_channel in (False, True):
            name = f"optimum-{isa}{'-pc' if per_channel else ''}"
            if not (work / name / "model_quantized.onnx").exists():
                subprocess.run([str(cli), "onnxruntime", "quantize", "--onnx_model", str(fp32), f"--{isa}",
                                *(["--per_channel"] if per_channel else []), "-o", str(work / name)],
                               check=True)
            files[f"optimum int8 --{isa}{' --per_channel' if per_channel else ''}"] = \
                work / name / "model_quantized.onnx"
    return files


def our_files(model: str, tokenizer: str | None, work: Path, seed: int) -> dict[str, Path]:
    from export.bundle import read_manifest
    from export.pipeline import ExportConfig, run_export

    out = work / "pocketbert"
    if not out.exists():
        run_export(ExportConfig(model=model, out=out, targets=["onnx", "executorch"],
                                precisions=["fp32", "int8", "8da4w"], tokenizer=tokenizer, seed=seed))
    return {f"pocketbert {b.name}": b / read_manifest(b)["model_file"] for b in sorted(out.iterdir())}


def open_file(path: Path, threads: int):
    """(input names, run) for an .onnx or .pte file, with the file's own input names."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return names, lambda feeds: session.run(None, feeds)
    from executorch.runtime import Runtime

    from pocketbert.backends import open_runner

    n_inputs = Runtime.get().load_program(path).metadata("forward").num_inputs()
    names = ["input_ids", "attention_mask", "token_type_ids"][:n_inputs]
    return names, open_runner("executorch", path, names, threads)


def feeds_for(window, names: list[str], pad_to: int | None = None) -> dict[str, np.ndarray]:
    """A SQuAD window as one file's feeds (zeros for an input the tokenizer did not give)."""
    from pocketbert.inputs import pad_inputs

    n = len(window.inputs["input_ids"])
    feeds = {name: np.asarray([window.inputs[name]], np.int64) if name in window.inputs
             else np.zeros((1, n), np.int64) for name in names}
    return pad_inputs(feeds, pad_to) if pad_to else feeds


def time_files(files: dict[str, Path], feats: list, threads: int, rounds: int, n_fixed: int,
               seq_len: int) -> dict[str, dict]:
    opened = {}
    for label, path in files.items():
        names, run = open_file(path, threads)
        fixed, real = feeds_for(feats[0], names, seq_len), [feeds_for(f, names) for f in feats]
        for _ in range(3):
            run(fixed)
        opened[label] = {"run": run, "fixed": fixed, "real": real, "fixed_ms": [], "real_ms": [],
                         "mb": path.stat().st_size / 1e6}
    labels = list(opened)
    for r in range(rounds):
        calls = {k: [] for k in labels}
        totals = dict.fromkeys(labels, 0.0)
        for i in range(n_fixed + len(feats)):
            k = (i + r) % len(labels)
            for label in labels[k:] + labels[:k]:
                f = opened[label]
                feed = f["fixed"] if i < n_fixed else f["real"][i - n_fixed]
                t = time.perf_counter()
                f["run"](feed)
                dt = time.perf_counter() - t
                if i < n_fixed:
                    calls[label].append(dt)
                else:
                    totals[label] += dt
        for label in labels:
            opened[label]["fixed_ms"].append(1e3 * float(np.median(calls[label])))
            opened[label]["real_ms"].append(1e3 * totals[label] / len(feats))
        print(f"round {r + 1}/{rounds} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return opened


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="distilbert-base", help="preset or HF QA folder")
    ap.add_argument("--tokenizer", default=str(ROOT.parent / "shared/data/vocab/vocab.txt"))
    ap.add_argument("--work", type=Path, required=True, help="folder for the peer and pocketbert files")
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/pocketbert/optimum-venv")
    ap.add_argument("--isa", nargs="+", default=["avx2"], help="optimum quantize configs (avx2 avx512_vnni...)")
    ap.add_argument("--squad", default=str(ROOT.parent / "shared/data/squad/dev-v1.1-first12.json"),
                    help="questions to time (the first --questions, real length)")
    ap.add_argument("--questions", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n-fixed", type=int, default=25)
    ap.add_argument("--seq-len", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", metavar="squad:PATH", help="also score F1 / identical answers (trained model)")
    args = ap.parse_args()

    from export.task_eval import squad_windows
    from pocketbert.models import load_model

    args.work.mkdir(parents=True, exist_ok=True)
    is_preset = not Path(args.model).is_dir()
    tokenizer = args.tokenizer if is_preset else None
    cli = ensure_venv(args.venv)
    folder = hf_folder(args.model, tokenizer, args.work / "hf", args.seed)
    files = {**peer_files(cli, folder, args.work, args.isa), **our_files(args.model, tokenizer, args.work, args.seed)}
    loaded = load_model(args.model, "question-answering", tokenizer=tokenizer, seed=args.seed)
    feats, _ = squad_windows(Path(args.squad), loaded.tokenizer, args.seq_len, args.questions)
    print(f"timing {len(files)} files, {args.threads} threads, load {os.getloadavg()}", file=sys.stderr)
    timed = time_files(files, feats, args.threads, args.rounds, args.n_fixed, args.seq_len)
    quality = evaluate(files, loaded, args.eval) if args.eval else {}
    print(f"\n| file | MB | fixed-{args.seq_len} ms | real ms/question |{' F1 | identical |' if quality else ''}")
    print(f"|---|---:|---:|---:|{'---:|---:|' if quality else ''}")
    for label, t in timed.items():
        q = quality.get(label)
        extra = f" {q['f1']:.2f} | {q['identical']:.1%} |" if q else (" - | - |" if quality else "")
        print(f"| {label} | {t['mb']:.1f} | {np.median(t['fixed_ms']):.1f} | {np.median(t['real_ms']):.1f} |{extra}")
    print(f"\n{args.threads} threads, median of {args.rounds} rounds, load average after: "
          f"{os.getloadavg()[0]:.1f}; mean real length "
          f"{np.mean([len(w.inputs['input_ids']) for w in feats]):.0f} tokens")
    return 0


def evaluate(files: dict[str, Path], loaded, spec: str) -> dict[str, dict]:
    from export.pipeline import _reference_runner
    from export.task_eval import parse_eval_spec, squad_f1_gate, squad_windows

    _, path = parse_eval_spec(spec)
    feats, examples = squad_windows(path, loaded.tokenizer, 384, 1000)
    reference, cache, out = _reference_runner(loaded), {}, {}
    for label, p in files.items():
        names, run = open_file(p, 1)
        r = squad_f1_gate(feats, examples, loaded.input_names, reference,
                          lambda fd, _run=run, _n=names: _run({n: fd[n] for n in _n}),
                          None, 100.0, progress=False, cache=cache)
        out[label] = {"f1": r["export"]["f1"], "identical": r["identical_answers"],
                      "fp32_f1": r["fp32_pytorch"]["f1"]}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
