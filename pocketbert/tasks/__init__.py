"""The task registry: one file per job a model is exported for, holding what every command needs
to know about it: the transformers Auto class of its head, the exported graph's outputs (and the
post-processing done inside the graph), its quality metric, the --eval-data kinds that gate its
export, the bench workloads that time it and what task distillation calls it.

A task module ends with `register(Task(...))`. `get_task` fails listing the valid names. Nothing
here imports torch or transformers at module level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pocketbert.registry import Registry


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str  # transformers Auto class of the head, e.g. "AutoModelForQuestionAnswering"
    output_names: tuple[str, ...]  # the exported graph's outputs, in order
    outputs: Callable[[Any, Any], tuple]  # (model output, attention_mask (bs, seq)) -> the graph's outputs
    output_shape: Callable[[Any, Any, Any], list]  # (config, batch, seq) -> each output's shape
    metric: str  # the quality figure its gate and bench records carry
    head_keys: tuple[str, ...] = ()  # weight prefixes of its head (ignored when loading another task)
    eval_kinds: tuple[str, ...] = ()  # `--eval-data KIND:PATH` kinds that gate its exports
    workloads: tuple[str, ...] = ()  # bench workloads that time it
    distill_modes: tuple[str, ...] = ()  # `distill task --task` names it is distilled under
    labelled: bool = False  # outputs are scores over config.id2label
    pooled: bool = False  # the graph pools token states into one vector (pocketbert.pooling, read per model)
    description: str = ""

    def head_class(self):
        import transformers

        return getattr(transformers, self.auto_class)


REGISTRY: Registry[Task] = Registry(__name__, "task")
register = REGISTRY.register


def get_task(name: str) -> Task:
    return REGISTRY.get(name)


def all_tasks() -> dict[str, Task]:
    return REGISTRY.all()


def task_names() -> list[str]:
    return REGISTRY.names()


def head_keys() -> tuple[str, ...]:
    """Every task's head weight prefixes (a folder loaded for one task drops the others' heads)."""
    return tuple(k for t in REGISTRY.all().values() for k in t.head_keys)
