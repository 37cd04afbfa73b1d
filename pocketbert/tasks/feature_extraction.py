"""Sentence embeddings (on-device semantic search): the encoder's token states pooled (mean or [CLS],
as the model's sentence-transformers folder says, pocketbert.pooling) and L2-normalised INSIDE the
graph, so the exported file outputs the vector the app compares."""

from pocketbert.pooling import DEFAULT_POOLING, pool_tensor
from pocketbert.tasks import Task, register


def outputs(out, attention_mask, pooling=DEFAULT_POOLING):
    return (pool_tensor(out.last_hidden_state, attention_mask, pooling).float(),)  # (bs, hidden)


register(Task(
    name="feature-extraction",
    auto_class="AutoModel",  # the bare encoder: the pooling is the head
    output_names=("sentence_embedding",),
    outputs=outputs,
    output_shape=lambda config, bs, seq: [bs, config.hidden_size],
    metric="STS-B Spearman of cosine, and mean cosine to fp32's embeddings",
    eval_kinds=("stsb",),
    workloads=("sentences",),
    pooled=True,
    description="sentence embeddings: pooled (mean/CLS) and L2-normalised in the graph",
))
