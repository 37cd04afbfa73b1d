"""Sentence (pair) classification, GLUE-style: one row of label logits per input."""

from pocketbert.tasks import Task, register


def outputs(out, attention_mask):
    return (out.logits.float(),)  # (bs, num_labels)


register(Task(
    name="sequence-classification",
    auto_class="AutoModelForSequenceClassification",
    output_names=("logits",),
    outputs=outputs,
    output_shape=lambda config, bs, seq: [bs, config.num_labels],
    metric="accuracy and identical labels vs fp32",
    head_keys=("classifier.", "pre_classifier."),
    eval_kinds=("glue",),
    workloads=("stsb",),
    distill_modes=("sequence-classification", "regression"),  # regression: one-label STS-B scores
    labelled=True,
    description="sentence (pair) classification: label logits",
))
