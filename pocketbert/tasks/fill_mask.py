"""Masked-token prediction: vocabulary logits at every position (the MLM head)."""

from pocketbert.tasks import Task, register


def outputs(out, attention_mask):
    return (out.logits.float(),)  # (bs, seq, vocab)


register(Task(
    name="fill-mask",
    auto_class="AutoModelForMaskedLM",
    output_names=("logits",),
    outputs=outputs,
    output_shape=lambda config, bs, seq: [bs, seq, config.vocab_size],
    metric="none (parity only): no task-quality gate",
    head_keys=("lm_head.",),  # the rest of each family's MLM head: its Family.head_keys
    description="masked-token prediction: vocabulary logits per position",
))
