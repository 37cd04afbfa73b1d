"""`pocketbert export`: load -> (per target and precision) export -> save -> validate -> manifest.

Every bundle is built in a temporary folder and the whole `--out` appears only when every
bundle passed parity: a failed or interrupted export leaves nothing that looks valid.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from export.bundle import MANIFEST, describe_files
from export.config import ExportConfig
from export.coverage import coverage_warning, delegated_label
from export.int8_choice import INT8_MODES, auto_modes, choose_int8_mode, resolve, unmeasured_choice
from export.int8_guided import check_choosing_spec
from export.parity import check_parity, tolerance_for
from export.targets import ExportTarget, all_targets, get_target
from export.task_eval import load_task_data, max_metric_drop, min_agreement
from pocketbert.backends import LoadRequest, check_precision, get_runtime
from pocketbert.common import (CheckFailed, UsageError, console_stderr, git_revision, library_versions, lookup,
                               signals_deferred, write_json)
from pocketbert.outputs import atomic_output_dir, check_output_dir
from pocketbert.contracts import Manifest
from pocketbert.inputs import pad_inputs
from pocketbert.families import family_of
from pocketbert.models import count_parameters, load_model, peek_model_type
from pocketbert.tables import markdown_table
from pocketbert.tasks import get_task
from pocketbert.textgen import synthetic_examples


def plan(cfg: ExportConfig) -> list[tuple[str, str]]:
    """(target, precision) pairs to build; unknown or unsupported names fail before any work."""
    pairs = []
    for name in dict.fromkeys(cfg.targets):
        target = get_target(name, "target")
        for precision in dict.fromkeys(cfg.precisions):
            tolerance_for(precision, target)  # an unknown precision fails listing the known ones
            if len(cfg.precisions) > 1 and precision not in target.precisions:
                continue  # several precisions asked: each target builds those it supports
            check_precision(target, precision)
            pairs.append((name, precision))
    if not pairs:
        raise UsageError("nothing to export: no target supports the requested precisions")
    return pairs


def check_family(model_type: str | None, pairs: list[tuple[str, str]], where: str) -> None:
    """Refuse, before any work, the (target, precision) pairs the model's family cannot make (one
    line with the reason); None: not known before loading (a hub id)."""
    if model_type is None:
        return
    family = family_of(model_type, where)
    for target, precision in pairs:
        family.check_export(target, precision)


def run_export(cfg: ExportConfig, log=None) -> list[Path]:
    """Export `cfg.model` to every planned (target, precision); returns the bundle folders."""
    from tqdm import tqdm

    log = log or tqdm.write  # keeps log lines and the progress bar apart
    cfg.validate()  # every knob's choices and range, by its flag's rule
    pairs = plan(cfg)
    check_output_dir(Path(cfg.out), cfg.overwrite)
    check_int8_mode(cfg, pairs)
    if cfg.int8_guided:
        check_choosing_spec(cfg.int8_guided, cfg.eval_data, cfg.task, pairs)
    check_family(peek_model_type(cfg.model), pairs, cfg.model)
    log(f"loading {cfg.model} ({cfg.task})")
    loaded = load_model(cfg.model, cfg.task, tokenizer=cfg.tokenizer, seed=cfg.seed)
    check_family(loaded.model_type, pairs, cfg.model)
    if cfg.seq_len > loaded.max_positions:
        raise UsageError(f"--seq-len {cfg.seq_len} exceeds the model's position limit "
                         f"({loaded.max_positions}): use --seq-len {loaded.max_positions} or less")
    tok = loaded.tokenizer
    calibration = synthetic_examples(tok, cfg.task, cfg.calibration_samples, cfg.seq_len,
                                     seed=cfg.seed + 1)
    examples = synthetic_examples(tok, cfg.task, cfg.parity_samples, cfg.seq_len, seed=cfg.seed + 2)
    reference = _reference_runner(loaded)
    task_data = _task_data(cfg, loaded)

    bundles, manifests, failures = [], [], []
    with atomic_output_dir(Path(cfg.out), cfg.overwrite) as tmp:
        for target_name, precision in tqdm(pairs, desc="export", unit="bundle", disable=len(pairs) < 2,
                                           file=console_stderr()):
            name = f"{target_name}-{precision}"
            bundle = tmp / name
            bundle.mkdir()
            step = lambda msg, _n=name: log(f"[{_n}] {msg}")  # noqa: E731
            manifest = export_one(loaded, target_name, precision, cfg, calibration, examples,
                                  reference, bundle, step, task_data=task_data)
            step(f"{manifest.files[manifest.model_file].bytes / 1e6:.1f} MB, "
                 f"parity {manifest.parity['status']} in {manifest.export_seconds:.0f} s")
            for check, facts in (("parity", manifest.parity), ("task_eval", manifest.task_eval or {})):
                if facts.get("status", "").startswith("failed"):
                    failures.append(f"{name} {check}: {facts['status']}")
            bundles.append(Path(cfg.out) / name)
            manifests.append((name, manifest))
        log(summary_markdown(manifests))
        if failures:
            raise CheckFailed("out of tolerance, no bundle written: " + " | ".join(failures))
    log(f"wrote {len(bundles)} bundle(s) to {cfg.out}")
    return bundles


def summary_markdown(manifests: list[tuple[str, Manifest]]) -> str:
    """A Markdown table of bundles: size, parity figures, task metric, export time."""
    rows = []
    for name, m in manifests:
        p, d = m.parity, m.delegation
        size = m.files[m.model_file].bytes / 1e6
        fmt = lambda k, f: format(p[k], f) if k in p else "-"  # noqa: E731
        t = m.task_eval or {}
        exp = t.get("export") or {}
        metric = "f1" if "f1" in exp else next(iter(exp), None)  # f1, accuracy, spearman or label_agreement
        ref = f" ({t['fp32_pytorch'][metric]:.2f})" if metric in t.get("fp32_pytorch", {}) else ""
        f1 = f"{t['export'][metric] * (100 if metric == 'label_agreement' else 1):.2f}{ref}" if metric else t.get("status", "-")
        same = (f"{t['identical_answers']:.1%}" if "identical_answers" in t else
                f"cos {t['mean_cosine_to_fp32']:.5f}" if "mean_cosine_to_fp32" in t else "-")
        rows.append([name, f"{size:.1f}", p["status"], fmt("max_abs_diff", ".2e"), fmt("min_snr_db", ".1f"),
                     fmt("decision_agreement", ".1%"), f1, same,
                     delegated_label(d and {"delegated_pct": d.delegated_pct, "partitions": d.partitions}),
                     f"{m.export_seconds:.0f}"])
    return markdown_table(["bundle", "size MB", "parity", "max abs diff", "min SNR dB", "agreement",
                           "task metric (fp32)", "identical answers", "delegated", "export s"], rows, "lrlrrrrrrr")


def _task_data(cfg: ExportConfig, loaded):
    """Eval data for the task-metric gate (SQuAD windows or GLUE rows), or None without --eval-data."""
    if not cfg.eval_data:
        return None
    data = load_task_data(cfg.eval_data, cfg.task, loaded.tokenizer, cfg.seq_len,
                          cfg.eval_questions, getattr(loaded.model.config, "label2id", None))
    return {"data": data, "cache": {}}


def check_int8_mode(cfg: ExportConfig, pairs: list[tuple[str, str]] = ()) -> None:
    """A known --int8-mode, one every planned int8 target builds (blockwise: ONNX only), and none
    that --int8-guided cannot honour (it searches the dynamic graph)."""
    lookup({m: m for m in INT8_MODES}, cfg.int8_mode, "int8 mode")
    if cfg.int8_guided and cfg.int8_mode not in ("auto", "dynamic"):
        raise UsageError("--int8-guided keeps layers fp32 in the dynamic int8 graph: use "
                         f"--int8-mode dynamic or auto with it, not {cfg.int8_mode}")
    if cfg.int8_mode == "auto":
        return
    for name, precision in pairs:
        target = get_target(name)
        if precision == "int8" and len(target.int8_modes) > 1 and cfg.int8_mode not in target.int8_modes:
            builders = [t.label or n for n, t in all_targets().items() if cfg.int8_mode in t.int8_modes]
            raise UsageError(f"--int8-mode {cfg.int8_mode} is built by {', '.join(builders)} only; "
                             f"{target.label or name} int8 builds {', '.join(target.int8_modes)}: "
                             f"export {name} int8 in another run")


def export_one(loaded, target_name: str, precision: str, cfg: ExportConfig, calibration,
               examples, reference, bundle: Path, log=print, task_data=None) -> Manifest:
    """export (int8 auto: both int8 modes, measured, one kept) -> save tokenizer -> validate ->
    manifest, for one (target, precision)."""
    target = get_target(target_name)
    mode, why = resolve(target, runtime_available(target), precision, cfg)
    if mode == "auto":
        def build_mode(int8: str, folder: Path, say):  # what the int8 choice builds, checks and times
            return build(target, loaded, precision, replace(cfg, int8_mode=int8), calibration, folder, say)

        def check(made, folder: Path, say):
            return check_export(target, loaded, precision, made, folder, examples, reference, say, task_data, cfg)

        def load(path: Path, threads: int):
            return get_runtime(target.runs_on).load(LoadRequest(loaded.input_names, threads, path,
                                                                task=loaded.task, precision=precision))[0]

        result, parity, task_eval, export_seconds = choose_int8_mode(build_mode, check, load, examples,
                                                                     bundle, log, auto_modes(target))
    else:
        t0 = time.perf_counter()
        result = build(target, loaded, precision, replace(cfg, int8_mode=mode or "dynamic"),
                       calibration, bundle, log)
        export_seconds = time.perf_counter() - t0
        if why:  # auto resolved without measuring
            log(f"int8 auto -> {mode}: {why}")
            result = replace(result, notes={**(result.notes or {}), "int8_choice":
                                            unmeasured_choice(cfg.int8_mode, mode, why)})
        parity, task_eval = check_export(target, loaded, precision, result, bundle, examples,
                                         reference, log, task_data, cfg)
    save_tokenizer(loaded.tokenizer, bundle)
    loaded.model.config.save_pretrained(bundle)

    bs = "batch" if result.dynamic_batch else 1
    seq = "seq" if result.dynamic_seq else result.seq_lens
    manifest = Manifest(
        target=target_name, precision=precision, task=loaded.task, model_type=loaded.model_type,
        tokenizer_kind=loaded.tokenizer_kind,
        source=loaded.source, model_file=result.model_file, seq_len=max(result.seq_lens),
        seq_lens=result.seq_lens, dynamic_seq=result.dynamic_seq,
        inputs=[{"name": n, "dtype": result.input_dtype, "shape": [bs, seq]} for n in loaded.input_names],
        outputs=_output_specs(loaded, bs, seq), label_names=loaded.label_names,
        special_tokens={k: getattr(loaded.tokenizer, k) for k in
                        ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id", "unk_token_id")},
        do_lower_case=bool(getattr(loaded.tokenizer, "do_lower_case", True)),
        parameters=count_parameters(loaded.model), parity=parity, task_eval=task_eval,
        export_seconds=round(export_seconds, 2), delegation=result.delegation,
        notes={**(result.notes or {}), **({"pooling": loaded.pooling.to_dict()} if loaded.pooling else {})},
        config={**asdict(cfg), "out": str(cfg.out), "target": target_name, "precision": precision},
        versions=library_versions(), git_revision=git_revision(),
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        files=describe_files(bundle))
    warning = coverage_warning(result.delegation)
    if warning:
        log(f"warning: {warning}")
    write_json(bundle / MANIFEST, manifest.to_dict())
    return manifest


def runtime_available(target: ExportTarget) -> tuple[bool, str]:
    """Whether the runtime that loads `target`'s files runs here (parity, the int8 timing), and why not."""
    runtime = get_runtime(target.runs_on, "runtime of an export target")
    return runtime.available()


def build(target: ExportTarget, loaded, precision: str, cfg: ExportConfig, calibration, folder: Path, log):
    """The target's export into `folder` (Ctrl-C held until it is done): its ExportResult."""
    with signals_deferred(f"the {target.label or target.name} export in progress"):
        return target.export(loaded, precision, cfg, calibration, folder, log=log)


def check_export(target: ExportTarget, loaded, precision: str, result, folder: Path, examples, reference,
                 log, task_data, cfg: ExportConfig) -> tuple[dict, dict | None]:
    """The target's file check, then parity against PyTorch and (--eval-data) the task gate, run in
    the target's runtime: (parity, task_eval), each {"status": "not run: why"} where that runtime
    can't run here."""
    model_path = folder / result.model_file
    if target.check_bundle:
        target.check_bundle(model_path, loaded.input_names, loaded.output_names)
    can_run, why = runtime_available(target)
    why = f"not run: {why}"
    if not can_run:
        return {"status": why}, ({"status": why} if task_data is not None else None)
    log("parity check")
    runner, _ = get_runtime(target.runs_on).load(LoadRequest(loaded.input_names, None, model_path,
                                                             task=loaded.task, precision=precision))
    feeds = examples if result.dynamic_seq else [_pad_for(ex, result.seq_lens) for ex in examples]
    parity = check_parity(loaded.task, precision, reference, runner, feeds, target)
    task_eval = None
    if task_data is not None:
        data = task_data["data"]
        log(f"task eval: {data.kind} on {data.size} {data.unit} vs PyTorch fp32")
        pad = None if result.dynamic_seq else max(result.seq_lens)
        task_eval = data.score(loaded.input_names, reference, runner, pad,
                               max_metric_drop(cfg, data.kind), min_agreement(cfg, data.kind),
                               task_data["cache"])
    return parity, task_eval


def _pad_for(example: dict[str, np.ndarray], seq_lens: list[int]) -> dict[str, np.ndarray]:
    """Pad to the smallest enumerated length that fits (what an app does with fixed shapes)."""
    length = example["input_ids"].shape[1]
    return pad_inputs(example, min(n for n in seq_lens if n >= length))


def _output_specs(loaded, bs, seq) -> list[dict]:
    shape = get_task(loaded.task).output_shape(loaded.model.config, bs, seq)
    return [{"name": n, "dtype": "float32", "shape": shape} for n in loaded.output_names]


def _reference_runner(loaded):
    """The PyTorch fp32 model as a runner: the ground truth every export is compared with."""
    import torch

    from pocketbert.wrapper import ExportWrapper  # torch

    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids, loaded.pooling).eval()

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            out = wrapper(*[torch.from_numpy(feeds[n]).long() for n in loaded.input_names])
        return [o.numpy() for o in out]

    return run


def save_tokenizer(tokenizer, bundle: Path) -> None:
    """tokenizer.json (+ config) for Python, and a plain vocab.txt for on-device WordPiece."""
    tokenizer.save_pretrained(bundle)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    (bundle / "vocab.txt").write_text("".join(tok + "\n" for tok, _ in vocab))
