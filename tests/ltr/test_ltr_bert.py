from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from labworks.ltr.bert import (
    BertConfig,
    BertEncoder,
    CrossEncoderRanker,
    encode_lists,
    fit_cross_encoder,
    load_bert_weights,
    make_text_ranking,
    score_lists,
    train_wordpiece,
)
from labworks.ltr.metrics import ndcg

TINY = BertConfig(
    vocab_size=400,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
)


def test_attention_matches_a_manual_implementation() -> None:
    torch.manual_seed(0)
    enc = BertEncoder(TINY).eval()
    ids = torch.randint(5, 400, (3, 10))
    att = torch.ones(3, 10, dtype=torch.long)
    att[1, 6:] = 0
    hidden, _ = enc(ids, torch.zeros_like(ids), att)
    # the same encoder, computed step by step with explicit softmax attention
    x = enc.embeddings(ids, torch.zeros_like(ids))
    for layer in enc.encoder.layer:
        sa = layer.attention.self

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(3, 10, 4, 8).transpose(1, 2)

        logits = heads(sa.query(x)) @ heads(sa.key(x)).transpose(-1, -2) / 8**0.5
        logits = logits.masked_fill(att[:, None, None, :] == 0, float("-inf"))
        ctx = (logits.softmax(-1) @ heads(sa.value(x))).transpose(1, 2).reshape(3, 10, 32)
        a = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
        x = layer.output.LayerNorm(
            layer.output.dense(torch.nn.functional.gelu(layer.intermediate.dense(a))) + a
        )
    torch.testing.assert_close(hidden, x, atol=1e-5, rtol=1e-5)


def test_padding_in_a_sequence_does_not_change_real_tokens() -> None:
    enc = BertEncoder(TINY).eval()
    ids = torch.randint(5, 400, (1, 6))
    short, _ = enc(ids, torch.zeros_like(ids), torch.ones_like(ids))
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    att = torch.cat([torch.ones(1, 6), torch.zeros(1, 4)], 1).long()
    long, _ = enc(padded_ids, torch.zeros_like(padded_ids), att)
    torch.testing.assert_close(long[:, :6], short, atol=1e-5, rtol=1e-5)


def test_load_safetensors_with_bert_prefix_and_shape_checks(tmp_path: Path) -> None:
    src = BertEncoder(TINY)
    save_file(
        {f"bert.{k}": v.contiguous() for k, v in src.state_dict().items()}
        | {"cls.predictions.bias": torch.zeros(400)},
        str(tmp_path / "w.safetensors"),
    )
    model = CrossEncoderRanker(TINY)
    report = load_bert_weights(model, tmp_path / "w.safetensors")
    assert report["missing"] == [] and report["unexpected"] == ["cls.predictions.bias"]
    for k, v in src.state_dict().items():
        assert torch.equal(model.bert.state_dict()[k], v)
    wrong = BertConfig(**{**TINY.to_dict(), "hidden_size": 16, "intermediate_size": 32})
    with pytest.raises(ValueError, match="shape"):
        load_bert_weights(BertEncoder(wrong), tmp_path / "w.safetensors")
    with pytest.raises(FileNotFoundError):
        load_bert_weights(model, tmp_path / "nope.safetensors")


def test_tokenizer_pairs_have_segments() -> None:
    lists = make_text_ranking(5, 4, seed=0)
    tok = train_wordpiece([x.query for x in lists] + [d for x in lists for d in x.docs], vocab_size=300)
    enc = encode_lists(tok, lists, max_length=24)
    assert enc["input_ids"].shape == (5, 4, 24)
    first = enc["input_ids"][0, 0]
    assert first[0] == tok.token_to_id("[CLS]")
    types = enc["token_type_ids"][0, 0][enc["attention_mask"][0, 0].bool()]
    assert types[0] == 0 and types[-1] == 1  # query segment, then the document segment


@pytest.mark.slow
def test_fine_tuning_beats_zero_shot_cosine() -> None:
    torch.manual_seed(0)
    train_lists, test_lists = make_text_ranking(160, 6, seed=1), make_text_ranking(40, 6, seed=2)
    tok = train_wordpiece(
        [x.query for x in train_lists] + [d for x in train_lists for d in x.docs], vocab_size=400
    )
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    model = CrossEncoderRanker(cfg)
    test = encode_lists(tok, test_lists, max_length=32)
    # zero-shot: cosine of mean-pooled query and document embeddings of the untrained encoder
    q = encode_lists(tok, [type(x)(x.query, [x.query], [0.0]) for x in test_lists], max_length=32)
    qe = model.embed(q["input_ids"][:, 0], q["attention_mask"][:, 0])
    de = model.embed(test["input_ids"].flatten(0, 1), test["attention_mask"].flatten(0, 1)).view(40, 6, -1)
    zero_shot = torch.nn.functional.cosine_similarity(qe[:, None], de, dim=-1)
    before = float(ndcg(zero_shot, test["labels"], test["list_mask"], k=3))
    losses = fit_cross_encoder(
        model, encode_lists(tok, train_lists, max_length=32), epochs=4, lr=1e-3, batch_size=8
    )
    assert losses[-1] < losses[0]
    after = float(ndcg(score_lists(model, test), test["labels"], test["list_mask"], k=3))
    assert after > before + 0.1, (before, after)
