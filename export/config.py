"""What `pocketbert export` is asked to do (`ExportConfig`, one field per flag).

Each field is the one source of its flag's default, choices and range (`pocketbert.knobs.knob`): the
flag is generated from it (export/cli.py) and `ExportConfig.validate` checks a value by the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from export.int8_choice import INT8_MODES
from export.parity import TOLERANCES
from export.targets import all_targets
from export.targets.coreml import ENUMERATED_LENS
from export.task_eval import check_eval_data
from pocketbert import argtypes as t
from pocketbert.common import UsageError
from pocketbert.knobs import check_knobs, knob
from pocketbert.tasks import task_names

eval_spec = t.data_spec(check_eval_data, "squad:PATH")  # squad:PATH or glue:PATH (task-metric data)
seq_lens = t.int_range(8, 4096)  # at most the model's position limit, checked once it is loaded


def target_precisions() -> list[str]:
    """Every precision some export target builds."""
    return sorted({p for target in all_targets().values() for p in target.precisions})


@dataclass
class ExportConfig:
    model: str = knob(rule=t.model)  # preset name, local Hugging Face folder, or hub id
    out: Path = knob(rule=t.output_dir)  # output folder: one bundle per (target, precision) inside it
    # which head: the paper's on-device study is QA
    task: str = knob("question-answering", rule=t.choice(task_names, "task"))
    # runtimes to export for
    targets: list[str] = knob(factory=lambda: ["executorch"], rule=t.choice(lambda: list(all_targets()), "target"),
                              flag="--target")
    # weights/compute precision
    precisions: list[str] = knob(factory=lambda: ["fp32"], rule=t.choice(target_precisions, "precision"),
                                 flag="--precision")
    seq_len: int = knob(384, rule=seq_lens, why="SQuAD's standard window")  # max tokens per input
    # CoreML enumerated lengths
    coreml_seq_lens: list[int] | None = knob(None, rule=seq_lens, none=f"{' '.join(map(str, ENUMERATED_LENS))} below "
                                             "--seq-len, and --seq-len")
    # vocab.txt or folder for presets
    tokenizer: str | None = knob(None, rule=t.tokenizer, none="a generated WordPiece vocab")
    calibration_samples: int = knob(32, rule=t.positive_int)  # real-looking inputs the int8 quantizer observes
    parity_samples: int = knob(8, rule=t.positive_int)  # inputs of spread-out lengths checked against PyTorch
    onnx_fuse: bool = True  # ONNX: fuse attention/SkipLayerNorm/BiasGelu (equal outputs, faster)
    onnx_optimize: bool = False  # ONNX: also run ORT's transformer optimizer (adds EmbedLayerNorm)
    # squad:PATH / glue:PATH: gate trained exports by F1 / accuracy vs fp32
    eval_data: str | None = knob(None, rule=eval_spec, none="no gate")
    # questions (rows) the gate scores
    eval_questions: int = knob(1000, rule=t.positive_int, why=">= 1000 resolve ~1 F1 point")
    # F1 points an export may lose vs fp32
    max_f1_drop: float = knob(3.0, rule=t.nonneg_float, why="int8 loses ~2.5")
    # glue: accuracy points an export may lose vs fp32
    max_accuracy_drop: float = knob(1.0, rule=t.nonneg_float, why="~10 rows in 1000")
    # share of answers equal to fp32's an export must keep
    min_identical_answers: float = knob(0.0, rule=t.fraction, why="no bound")
    # stsb: Spearman points an embedding export may lose vs fp32
    max_spearman_drop: float = knob(0.5, rule=t.nonneg_float, why="issue 30's bound")
    # stsb: mean cosine of the export's embeddings to fp32's: the int8 parity bound, held on average over real text
    min_mean_cosine: float = knob(TOLERANCES["int8"].min_cosine, rule=t.fraction, why="the int8 parity bound")
    # text: share of words labelled as fp32 labels them (token-classification)
    min_label_agreement: float = knob(0.97, rule=t.fraction, why="one flipped label in ~30 words")
    # squad:/glue:PATH to choose on: keep int8's most harmful layers fp32
    int8_guided: str | None = knob(None, rule=eval_spec, none="off")
    # choosing questions (rows)
    int8_guided_questions: int = knob(300, rule=t.positive_int, why="~2 points of identical answers, ~1 min a step")
    # what guided int8 aims at on its choosing data, whatever the (looser) export gate: answers kept,
    # not just F1 within the gate's bound (aiming at the 3-F1 gate stopped at ~82% identical answers on
    # the trained MiniLM teacher; ExecuTorch's int8 keeps ~95% with the same F1)
    int8_guided_min_identical: float = knob(0.95, rule=t.fraction, why="ExecuTorch's int8 keeps ~95%")
    int8_guided_max_drop: float = knob(0.5, rule=t.nonneg_float)  # F1 (accuracy) points on the choosing data
    # ONNX/ExecuTorch int8: dynamic, static, auto (measure them here); ONNX: blockwise, int-attention, per-tensor
    int8_mode: str = knob("auto", rule=t.choice(INT8_MODES, "int8 mode"))
    seed: int = knob(0, rule=t.nonneg_int)  # presets' random init and the synthetic inputs
    overwrite: bool = False  # replace a non-empty --out

    def validate(self) -> None:
        """Every field's choices and range, by the rules its flags use, then the rules between fields:
        one line naming the flag."""
        check_knobs(self)
        if self.coreml_seq_lens and max(self.coreml_seq_lens) > self.seq_len:
            raise UsageError(f"--coreml-seq-lens {max(self.coreml_seq_lens)} exceeds --seq-len {self.seq_len}: "
                             "the model file accepts at most --seq-len tokens")
