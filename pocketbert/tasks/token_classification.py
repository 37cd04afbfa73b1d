"""Token classification (NER, PII): label logits at every position; a word's label is its first
sub-token's, and entity spans are grouped outside the graph (pocketbert.token_labels)."""

from pocketbert.tasks import Task, register


def outputs(out, attention_mask):
    return (out.logits.float(),)  # (bs, seq, num_labels)


register(Task(
    name="token-classification",
    auto_class="AutoModelForTokenClassification",
    output_names=("logits",),
    outputs=outputs,
    output_shape=lambda config, bs, seq: [bs, seq, config.num_labels],
    metric="word labels identical to fp32's on real text",
    head_keys=("classifier.",),
    eval_kinds=("text",),
    workloads=("tokens",),
    labelled=True,
    description="token classification (NER, PII): label logits per token, entity spans outside the graph",
))
