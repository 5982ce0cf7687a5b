"""``labworks demo`` for ltr: train DASALC and a ranking GAM on built-in synthetic MSLR-like data."""

from __future__ import annotations

import json
from pathlib import Path

from labworks.core import atomic_write_text
from labworks.ltr.config import DataConfig, ModelConfig, RankingConfig, TrainConfig
from labworks.ltr.pipeline import DatasetBuilder, Pipeline, write_scores


def demo(out_dir: Path, seed: int = 0) -> Path:
    """Train DASALC (softmax loss) and a GAM on the same synthetic split; write metrics, training
    curves, test scores and GAM shape functions. Returns the summary file. About a minute on 2 CPU cores."""
    out_dir = Path(out_dir)
    data = DataConfig(synthetic_queries=400, synthetic_max_list_size=120, batch_size=16, max_list_size=120)
    train, valid, test = DatasetBuilder(data, seed).build()
    assert test is not None
    summary: dict[str, object] = {"data": {"train": repr(train), "valid": repr(valid), "test": repr(test)}}
    for kind, model in {
        "dasalc": ModelConfig(kind="dasalc", hidden=128, n_dnn_layers=2, n_attention_layers=2, head_size=32),
        "gam": ModelConfig(kind="gam"),
    }.items():
        cfg = RankingConfig(
            seed=seed,
            out_dir=str(out_dir / kind),
            data=data,
            model=model,
            train=TrainConfig(epochs=8, patience=4, lr=2e-3 if kind == "dasalc" else 5e-3),
        )
        pipe = Pipeline(cfg, train=train, valid=valid, test=test)
        history = pipe.fit(resume=False)
        scores = pipe.predict(test)
        write_scores(test, scores, out_dir / kind / "test_scores.csv")
        summary[kind] = {"best_epoch": history.best_epoch + 1, "test": pipe.evaluate(test)}
        if kind == "gam":
            pipe.model.export_shape_functions(train.features, out_dir / kind)  # type: ignore[operator]
    summary["tfr_bert"] = _bert_demo(seed)
    path = atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return path


def _bert_demo(seed: int) -> dict[str, float]:
    """A small cross-encoder trained from scratch on the synthetic text-ranking set (no download):
    NDCG@3 before and after listwise fine-tuning."""
    import torch

    from labworks.ltr.bert import (
        BertConfig,
        CrossEncoderRanker,
        encode_lists,
        fit_cross_encoder,
        make_text_ranking,
        score_lists,
        train_wordpiece,
    )
    from labworks.ltr.metrics import ndcg

    torch.manual_seed(seed)
    train, test = make_text_ranking(120, 6, seed=seed), make_text_ranking(40, 6, seed=seed + 1)
    tok = train_wordpiece([x.query for x in train] + [d for x in train for d in x.docs], vocab_size=400)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    model = CrossEncoderRanker(cfg)
    enc_test = encode_lists(tok, test, max_length=32)
    before = float(ndcg(score_lists(model, enc_test), enc_test["labels"], enc_test["list_mask"], k=3))
    fit_cross_encoder(
        model, encode_lists(tok, train, max_length=32), epochs=3, lr=1e-3, batch_size=8, seed=seed
    )
    after = float(ndcg(score_lists(model, enc_test), enc_test["labels"], enc_test["list_mask"], k=3))
    return {"ndcg@3_untrained": before, "ndcg@3_fine_tuned": after}
