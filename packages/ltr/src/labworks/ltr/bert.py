"""TFR-BERT: a BERT cross-encoder scoring ``[CLS] query [SEP] doc [SEP]`` pairs, trained per list
with a listwise loss (Han et al., 2020), in plain PyTorch.

Parameter names follow the common BERT checkpoint layout (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight`` ...), so :func:`load_bert_weights` reads a local
``.safetensors`` file of a BERT/MiniLM encoder; nothing is ever downloaded. Tokenizers are
``tokenizers.Tokenizer`` objects loaded from a local ``tokenizer.json`` or trained here by
:func:`train_wordpiece` (which the demo and tests do on the synthetic corpus).

Shapes: lists are ``(B, N)``; token tensors ``(B, N, L)``; scores ``(B, N)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from labworks.core import Config

__all__ = [
    "BertConfig",
    "BertEncoder",
    "CrossEncoderRanker",
    "TextRankingList",
    "encode_lists",
    "fit_cross_encoder",
    "load_bert_weights",
    "make_text_ranking",
    "score_lists",
    "train_wordpiece",
]


class BertConfig(Config):
    """Encoder size. Defaults: MiniLM-L6 scale (6 layers, hidden 384, 12 heads)."""

    vocab_size: int = Field(30522, ge=8)
    hidden_size: int = Field(384, ge=8)
    num_hidden_layers: int = Field(6, ge=1)
    num_attention_heads: int = Field(12, ge=1)
    intermediate_size: int = Field(1536, ge=8)
    max_position_embeddings: int = Field(512, ge=8)
    type_vocab_size: int = Field(2, ge=1)
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = Field(0.1, ge=0, lt=1)


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.p = c.hidden_dropout_prob

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, length, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)),
            split(self.key(x)),
            split(self.value(x)),
            attn_mask=attn_mask,
            dropout_p=self.p if self.training else 0.0,
        )
        return out.transpose(1, 2).reshape(b, length, d)


class _DenseNorm(nn.Module):
    def __init__(self, d_in: int, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseNorm(c.hidden_size, c)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c.intermediate_size, c)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        a = self.attention.output(self.attention.self(x, attn_mask), x)
        return self.output(F.gelu(self.intermediate.dense(a)), a)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class _Pooler(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)


class BertEncoder(nn.Module):
    """A post-LayerNorm BERT encoder. ``forward`` returns ``(hidden: (B, L, H), pooled: (B, H))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
            )
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds {self.config.max_position_embeddings}"
            )
        x = self.embeddings(input_ids, token_type_ids)
        mask = attention_mask.bool()[:, None, None, :]  # keys only; padded queries are ignored downstream
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x, torch.tanh(self.pooler.dense(x[:, 0]))


class CrossEncoderRanker(nn.Module):
    """Scores each (query, doc) pair from the pooled ``[CLS]`` vector; lists are flattened to pairs
    (padded documents are skipped entirely) and restored to ``(B, N)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertEncoder(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.score = nn.Linear(config.hidden_size, 1)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        list_mask: torch.Tensor,
    ) -> torch.Tensor:
        """``input_ids, token_type_ids, attention_mask: (B, N, L)``, ``list_mask: (B, N)`` → ``(B, N)``."""
        real = list_mask.bool()
        _, pooled = self.bert(input_ids[real], token_type_ids[real], attention_mask[real])
        scores = pooled.new_zeros(list_mask.shape)
        scores[real] = self.score(self.dropout(pooled)).squeeze(-1)
        return scores

    @torch.no_grad()
    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled single-segment embeddings ``(M, H)`` (the zero-shot bi-encoder view)."""
        hidden, _ = self.bert(input_ids, torch.zeros_like(input_ids), attention_mask)
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1)


def load_bert_weights(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True
) -> dict[str, list[str]]:
    """Load a local ``.safetensors`` BERT checkpoint into ``model`` (a :class:`BertEncoder`, or a
    :class:`CrossEncoderRanker` whose ``bert`` it fills). Prefixes such as ``bert.`` are stripped;
    shapes are checked. Returns ``{"missing": [...], "unexpected": [...]}``."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"encoder weights not found: {p}")
    target = model.bert if isinstance(model, CrossEncoderRanker) else model
    state = load_file(str(p))
    own = target.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for name, t in state.items():
        key = next(
            (
                name[len(pre) :]
                for pre in ("bert.", "model.", "")
                if name.startswith(pre) and name[len(pre) :] in own
            ),
            None,
        )
        if key is None:
            unexpected.append(name)
            continue
        if own[key].shape != t.shape:
            raise ValueError(
                f"{p}: {name} has shape {tuple(t.shape)}, the model expects {tuple(own[key].shape)}"
            )
        mapped[key] = t
    missing = sorted(set(own) - set(mapped))
    if strict and missing:
        raise ValueError(f"{p}: missing encoder weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    target.load_state_dict(mapped, strict=False)
    return {"missing": missing, "unexpected": unexpected}


# ---------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------


def train_wordpiece(corpus: Sequence[str], vocab_size: int = 2000) -> Any:
    """Train a BERT-style WordPiece ``tokenizers.Tokenizer`` on ``corpus`` (lower-cased), with the
    ``[CLS] A [SEP] B [SEP]`` pair template. Save it with ``tok.save("tokenizer.json")``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.decoder = decoders.WordPiece()
    return tok


@dataclass
class TextRankingList:
    """One query with its candidate documents and graded labels."""

    query: str
    docs: list[str]
    labels: list[float]


def encode_lists(
    tokenizer: Any, lists: Sequence[TextRankingList], max_length: int = 64, list_size: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenise ``(query, doc)`` pairs of every list into padded ``(B, N, L)`` tensors plus
    ``list_mask: (B, N)`` and ``labels: (B, N)``. ``list_size`` caps N (the first documents)."""
    if max_length < 4:
        raise ValueError(f"max_length must be >= 4, got {max_length}")
    n = max(len(x.docs) for x in lists) if list_size is None else list_size
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(length=max_length, pad_id=tokenizer.token_to_id("[PAD]") or 0)
    ids = torch.zeros(len(lists), n, max_length, dtype=torch.long)
    types = torch.zeros_like(ids)
    att = torch.zeros_like(ids)
    mask = torch.zeros(len(lists), n, dtype=torch.bool)
    labels = torch.zeros(len(lists), n)
    for b, item in enumerate(lists):
        docs = item.docs[:n]
        enc = tokenizer.encode_batch([(item.query, d) for d in docs])
        for i, e in enumerate(enc):
            ids[b, i] = torch.tensor(e.ids)
            types[b, i] = torch.tensor(e.type_ids)
            att[b, i] = torch.tensor(e.attention_mask)
        mask[b, : len(docs)] = True
        labels[b, : len(docs)] = torch.tensor(item.labels[:n], dtype=torch.float32)
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": att,
        "list_mask": mask,
        "labels": labels,
    }


# ---------------------------------------------------------------------------------------------
# Synthetic text ranking data (no download)
# ---------------------------------------------------------------------------------------------

_TOPICS = {
    "astronomy": "star planet galaxy orbit telescope comet nebula moon solar eclipse",
    "cooking": "recipe oven flour butter sauce garlic onion bake simmer spice",
    "finance": "stock bond market interest loan bank budget invest dividend inflation",
    "medicine": "doctor patient vaccine fever clinic surgery diagnosis therapy dose symptom",
    "sports": "football goal team coach match league score player stadium referee",
    "music": "guitar piano melody chord rhythm concert singer album band drum",
    "travel": "flight hotel passport beach museum luggage ticket tour island train",
    "computing": "python compiler memory kernel network server database cache thread algorithm",
}
_FILLER = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "with",
    "on",
    "about",
    "how",
    "what",
    "why",
    "guide",
    "notes",
    "overview",
    "simple",
    "best",
    "new",
]


def make_text_ranking(n_queries: int = 200, docs_per_query: int = 8, seed: int = 0) -> list[TextRankingList]:
    """Templated queries and documents with graded relevance by construction:
    2 = same topic and shares the query's keywords, 1 = same topic, other keywords, 0 = other topic."""
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    words = {t: _TOPICS[t].split() for t in topics}
    out = []
    for _ in range(n_queries):
        t = topics[rng.integers(len(topics))]
        keys = list(rng.choice(words[t], size=2, replace=False))
        query = " ".join([*rng.choice(_FILLER, 2), *keys])
        docs, labels = [], []
        for _ in range(docs_per_query):
            kind = rng.choice(3, p=[0.5, 0.3, 0.2])
            if kind == 2:
                body = [*keys, *rng.choice(words[t], 3)]
            elif kind == 1:
                others = [w for w in words[t] if w not in keys]
                body = list(rng.choice(others, 4, replace=False))
            else:
                other = topics[(topics.index(t) + 1 + rng.integers(len(topics) - 1)) % len(topics)]
                body = list(rng.choice(words[other], 4, replace=False))
            body += list(rng.choice(_FILLER, 4))
            rng.shuffle(body)
            docs.append(" ".join(body))
            labels.append(float(kind))
        out.append(TextRankingList(query, docs, labels))
    return out


def fit_cross_encoder(
    model: CrossEncoderRanker,
    encoded: dict[str, torch.Tensor],
    *,
    epochs: int = 3,
    lr: float = 1e-4,
    batch_size: int = 8,
    loss: str = "softmax",
    seed: int = 0,
    grad_accumulation: int = 1,
) -> list[float]:
    """Fine-tune ``model`` on :func:`encode_lists` output with a listwise loss; returns the mean
    loss per epoch. ``grad_accumulation`` sums gradients over that many batches (CPU memory)."""
    from labworks.core import progress
    from labworks.ltr.losses import get_loss

    loss_fn = get_loss(loss)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = encoded["input_ids"].shape[0]
    history = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        opt.zero_grad(set_to_none=True)
        chunks = list(order.split(batch_size))
        for i, idx in enumerate(progress(chunks, desc=f"bert epoch {epoch + 1}/{epochs}", leave=False)):
            b = {k: v[idx] for k, v in encoded.items()}
            scores = model(b["input_ids"], b["token_type_ids"], b["attention_mask"], b["list_mask"])
            value = loss_fn(scores, b["labels"], b["list_mask"])
            (value / grad_accumulation).backward()
            if (i + 1) % grad_accumulation == 0 or i + 1 == len(chunks):
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += float(value)
            steps += 1
        history.append(total / max(steps, 1))
    model.eval()
    return history


@torch.no_grad()
def score_lists(
    model: CrossEncoderRanker, encoded: dict[str, torch.Tensor], batch_size: int = 16
) -> torch.Tensor:
    """Scores ``(B, N)`` for encoded lists (eval mode)."""
    model.eval()
    out = []
    for idx in torch.arange(encoded["input_ids"].shape[0]).split(batch_size):
        b = {k: v[idx] for k, v in encoded.items()}
        out.append(model(b["input_ids"], b["token_type_ids"], b["attention_mask"], b["list_mask"]))
    return torch.cat(out)
