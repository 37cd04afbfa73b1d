"""pocketbert's distiller: the DistilBERT paper's recipe (Sanh et al. 2019).

- `distill.pretrain.distill`: the pre-training distillation pipeline (triple loss: KL on softened
  MLM logits, masked-LM cross-entropy, cosine between last hidden states), resumable, DDP via
  torchrun. Its parts: `config` (DistillConfig: knobs, defaults, validate()), `runtime`
  (RunContext: rank, device, AMP; RNG state), `loop` (the training loop and its step hooks),
  `objective` (forwards and the weighted loss), `mlm_head` (a head for a teacher without one),
  `evaluate` (held-out scores), `checkpoint` (atomic checkpoints).
- `distill.task.distill_task`: task-specific distillation (the paper's DistilBERT (D)) for
  question answering, classification and regression, with built-in evaluation.
- `distill.student`: build a DistilBERT student by copying one teacher layer out of two.

Nothing at package level imports torch, so `pocketbert --help` stays instant.
"""
