"""Each distillation loss against a plain reference computation, including the edge cases
(all padding, nothing masked) where the loss must be exactly 0 and still backpropagate."""

import math

import pytest
import torch
import torch.nn.functional as F

from distill import losses


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 5, 11, generator=g, requires_grad=True)  # (bs, seq, vocab)
    t = torch.randn(2, 5, 11, generator=g)  # (bs, seq, vocab)
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.bool)  # (bs, seq)
    return s, t, mask


def test_kl_matches_kldivloss_batchmean_times_t2(logits):
    s, t, mask = logits
    T = 2.0
    ref = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s[mask] / T, -1),
                                                    F.softmax(t[mask] / T, -1)) * T**2
    got = losses.kd_kl_loss(s, t, T, mask)
    torch.testing.assert_close(got, ref)
    # by hand for one position: sum p_t (log p_t - log p_s)
    p_t = F.softmax(t[0, 0] / T, -1)
    by_hand = (p_t * (p_t.log() - F.log_softmax(s[0, 0] / T, -1))).sum() * T**2
    torch.testing.assert_close(losses.kd_kl_loss(s[0, :1], t[0, :1], T), by_hand)


def test_kl_is_zero_for_identical_logits_and_for_empty_selection(logits):
    s, t, mask = logits
    assert losses.kd_kl_loss(t, t.clone(), 2.0).abs() < 1e-6
    empty = losses.kd_kl_loss(s, t, 2.0, torch.zeros_like(mask))
    assert empty.item() == 0.0
    empty.backward()
    assert s.grad is not None and s.grad.abs().sum() == 0


def test_mlm_loss_matches_cross_entropy_ignore_index(logits):
    s, _, mask = logits
    labels = torch.where(mask, torch.arange(10).view(2, 5) % 11, torch.full_like(mask, -100, dtype=torch.long))
    ref = F.cross_entropy(s.view(-1, 11), labels.view(-1), ignore_index=-100)
    torch.testing.assert_close(losses.mlm_loss(s, labels), ref)
    none = losses.mlm_loss(s, torch.full((2, 5), -100))
    assert none.item() == 0.0 and not math.isnan(none.item())


def test_cosine_loss_ignores_padding():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 4, 8, generator=g), torch.randn(2, 4, 8, generator=g)  # (bs, seq, dim)
    att = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])  # (bs, seq)
    keep = att.bool()
    ref = torch.nn.CosineEmbeddingLoss()(s[keep], t[keep], torch.ones(int(keep.sum())))
    torch.testing.assert_close(losses.cosine_loss(s, t, att), ref)
    s2 = s.clone()
    s2[~keep] = 1e3  # whatever sits on padding positions does not count
    torch.testing.assert_close(losses.cosine_loss(s2, t, att), ref)
    assert losses.cosine_loss(s, s * 3.0, att).abs() < 1e-6  # scale-invariant
    assert losses.cosine_loss(s, t, torch.zeros_like(att)).item() == 0.0


def test_mse_losses(logits):
    s, t, mask = logits
    ref = torch.nn.MSELoss(reduction="sum")(s[mask], t[mask]) / int(mask.sum())
    torch.testing.assert_close(losses.mse_loss(s, t, mask), ref)
    ref_h = F.mse_loss(s[mask], t[mask])
    torch.testing.assert_close(losses.hidden_mse_loss(s, t, mask), ref_h)
    assert losses.mse_loss(s, t, torch.zeros_like(mask)).item() == 0.0
    assert losses.hidden_mse_loss(s, t, torch.zeros_like(mask)).item() == 0.0


def test_weighted_triple_loss_combines_terms(logits):
    from distill.config import DistillConfig
    from distill.objective import compute_losses

    s, t, mask = logits
    g = torch.Generator().manual_seed(2)
    sh, th = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    labels = torch.arange(int(mask.sum())) % 11
    cfg = DistillConfig(alpha_ce=5, alpha_mlm=2, alpha_cos=1, alpha_mse=0.5, temperature=2)
    total, terms = compute_losses(cfg, sh, s[mask], th, t[mask], labels, mask)
    ref = (5 * losses.kd_kl_loss(s[mask], t[mask], 2) + 2 * F.cross_entropy(s[mask], labels)
           + 1 * losses.cosine_loss(sh, th, mask) + 0.5 * losses.mse_loss(s[mask], t[mask]))
    torch.testing.assert_close(total, ref)
    assert set(terms) == {"ce", "mlm", "cos", "mse"}


def _pooled_by_loop(h, att):
    """Plain per-sentence mean over real tokens, one row at a time."""
    return [h[i, : int(att[i].sum())].mean(0) for i in range(h.size(0)) if att[i].sum() > 0]


def test_pooled_cosine_loss_against_a_loop():
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(3, 5, 8, generator=g), torch.randn(3, 5, 8, generator=g)  # (bs, seq, dim)
    att = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])  # last row: all padding
    ps, pt = _pooled_by_loop(s, att), _pooled_by_loop(t, att)
    ref = sum(1 - F.cosine_similarity(a, b, dim=0) for a, b in zip(ps, pt)) / len(ps)
    torch.testing.assert_close(losses.pooled_cosine_loss(s, t, att), ref)
    s2 = s.clone()
    s2[~att.bool()] = 1e3  # padding does not leak into the pooled embedding
    torch.testing.assert_close(losses.pooled_cosine_loss(s2, t, att), ref)
    assert losses.pooled_cosine_loss(s, t, torch.zeros_like(att)).item() == 0.0


def test_similarity_loss_against_a_loop():
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(4, 6, 8, generator=g), torch.randn(4, 6, 8, generator=g)
    att = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [0] * 6, [1, 1, 0, 0, 0, 0]])
    ps, pt = _pooled_by_loop(s, att), _pooled_by_loop(t, att)
    diffs = [(F.cosine_similarity(ps[i], ps[j], dim=0) - F.cosine_similarity(pt[i], pt[j], dim=0)) ** 2
             for i in range(len(ps)) for j in range(len(ps)) if i != j]
    torch.testing.assert_close(losses.similarity_loss(s, t, att), sum(diffs) / len(diffs))
    # a student whose embeddings are a rotation of the teacher's has the same similarities
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert losses.similarity_loss(t @ q, t, att).item() < 1e-10
    assert losses.pooled_cosine_loss(t @ q, t, att).item() > 0.1  # ...but not the same directions
    one = torch.tensor([[1] * 6, [0] * 6, [0] * 6, [0] * 6])
    assert losses.similarity_loss(s, t, one).item() == 0.0  # no pair to compare


def test_embedding_terms_enter_the_total_with_their_weights():
    from distill.config import DistillConfig
    from distill.objective import compute_losses

    g = torch.Generator().manual_seed(5)
    sh, th = torch.randn(3, 5, 6, generator=g), torch.randn(3, 5, 6, generator=g)
    att = torch.ones(3, 5, dtype=torch.long)
    cfg = DistillConfig(alpha_cos=1, alpha_hidden_mse=0.5, alpha_pool_cos=2, alpha_sim=10)
    total, terms = compute_losses(cfg, sh, None, th, None, None, att)
    ref = (losses.cosine_loss(sh, th, att) + 0.5 * losses.hidden_mse_loss(sh, th, att)
           + 2 * losses.pooled_cosine_loss(sh, th, att) + 10 * losses.similarity_loss(sh, th, att))
    torch.testing.assert_close(total, ref)
    assert set(terms) == {"cos", "hmse", "pcos", "sim"}
