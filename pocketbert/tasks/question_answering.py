"""Extractive QA (SQuAD): start/end logits per token; the span is chosen outside the graph."""

from pocketbert.tasks import Task, register


def outputs(out, attention_mask):
    return out.start_logits.float(), out.end_logits.float()  # (bs, seq), (bs, seq)


register(Task(
    name="question-answering",
    auto_class="AutoModelForQuestionAnswering",
    output_names=("start_logits", "end_logits"),
    outputs=outputs,
    output_shape=lambda config, bs, seq: [bs, seq],
    metric="SQuAD F1 and identical answers vs fp32",
    head_keys=("qa_outputs.",),
    eval_kinds=("squad",),
    workloads=("squad", "synthetic"),
    distill_modes=("question-answering",),
    description="extractive question answering: start/end logits",
))
