"""Dynamic masking: 15% of real tokens, 80/10/10, frequency smoothing, never padding/specials."""

import numpy as np
import torch

from distill.masking import mask_tokens, token_probs

PAD, CLS, SEP, MASK, V = 0, 2, 3, 4, 100


def _batch(g, bs=16, seq=40):
    ids = torch.randint(5, V, (bs, seq), generator=g)  # (bs, seq)
    lengths = torch.randint(10, seq + 1, (bs,), generator=g)
    att = (torch.arange(seq)[None] < lengths[:, None]).long()  # (bs, seq)
    ids[:, 0] = CLS
    ids[torch.arange(bs), lengths - 1] = SEP
    ids[att == 0] = PAD
    return ids, att


def test_token_probs_smoothing_and_specials():
    counts = np.array([50, 0, 7, 9, 1, 1000, 10])
    p = token_probs(counts, 0.7, special_ids=[0, 2, 3, 4])
    assert p[[0, 2, 3, 4]].tolist() == [0, 0, 0, 0]
    assert abs(float(p[5]) - 1000 ** -0.7) < 1e-9 and abs(float(p[1]) - 1.0) < 1e-6  # count 0 -> 1
    assert p[6] > p[5]  # rarer tokens weigh more


def test_masking_statistics():
    g = torch.Generator().manual_seed(0)
    probs = token_probs(np.ones(V), 0.7, special_ids=[PAD, 1, CLS, SEP, MASK])
    n_real = n_pred = n_mask = n_rand = n_keep = 0
    for _ in range(60):
        ids, att = _batch(g)
        real = (att == 1) & (ids != CLS) & (ids != SEP)
        out, labels = mask_tokens(ids, att, probs, MASK, V, g)
        pred = labels != -100
        assert not (pred & ~real).any()  # never padding or special tokens
        assert torch.equal(labels[pred], ids[pred])
        assert torch.equal(out[~pred], ids[~pred])  # unpredicted positions untouched
        n_real += int(real.sum())
        n_pred += int(pred.sum())
        n_mask += int((out[pred] == MASK).sum())
        n_keep += int((out[pred] == ids[pred]).sum())
        n_rand += int(((out[pred] != MASK) & (out[pred] != ids[pred])).sum())
    assert abs(n_pred / n_real - 0.15) < 0.005
    assert abs(n_mask / n_pred - 0.80) < 0.02
    assert abs(n_rand / n_pred - 0.10) < 0.02  # (a random draw equal to the original counts as keep)
    assert abs(n_keep / n_pred - 0.10) < 0.02


def test_frequency_smoothing_masks_rare_tokens_more():
    g = torch.Generator().manual_seed(1)
    counts = np.ones(V)
    counts[10] = 10_000  # a very frequent token
    probs = token_probs(counts, 0.7, special_ids=[PAD, CLS, SEP, MASK])
    rate = {10: [0, 0], 11: [0, 0]}
    for _ in range(100):
        ids = torch.where(torch.rand(8, 30, generator=g) < 0.5, 10, 11)  # (bs, seq)
        att = torch.ones_like(ids)
        _, labels = mask_tokens(ids, att, probs, MASK, V, g)
        for tok in rate:
            rate[tok][0] += int(((labels != -100) & (ids == tok)).sum())
            rate[tok][1] += int((ids == tok).sum())
    assert rate[11][0] / rate[11][1] > 5 * rate[10][0] / rate[10][1]


def test_all_padding_masks_nothing_and_is_seeded():
    probs = token_probs(np.ones(V), 0.7, special_ids=[PAD])
    ids = torch.zeros(3, 7, dtype=torch.long)
    out, labels = mask_tokens(ids, torch.zeros_like(ids), probs, MASK, V, torch.Generator())
    assert (labels == -100).all() and torch.equal(out, ids)
    g = torch.Generator().manual_seed(5)
    ids, att = _batch(g)
    a = mask_tokens(ids, att, probs, MASK, V, torch.Generator().manual_seed(3))
    b = mask_tokens(ids, att, probs, MASK, V, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
