"""Tiny random-init encoders of each Hugging Face family, saved as a pretrained model would be.

Each builder trains the family's own kind of tokenizer with the `tokenizers` library on the demo
sentences (plus a few Latin ones, for case and digits), wraps it in the family's fast tokenizer
class, and saves it beside a small random encoder of that family (its base model: the head is
new, as for a real checkpoint). `model.name_or_path=<the directory>` then trains it like any hub
model. The fifth, XLM-R, is the demo's tiny model saved the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from tokenizers.implementations import (
    BertWordPieceTokenizer,
    ByteLevelBPETokenizer,
    SentencePieceUnigramTokenizer,
)

from ner.demo.generate import generate_split

POSITIONS = 48  # the position table of the absolute-position families: demo sentences need windows
SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# Sentences beyond the Hebrew demo: upper case, digits, punctuation, a hyphen, niqqud.
EXTRA = [
    ["Visit", "New", "York", "in", "2024", "!"],
    ["IBM", "(", "42", ")", "hired", "John", "Smith", ",", "said", "Reuters", "."],
    ["דוד", "בן-גוריון", "נולד", "ב-1886", "בפלונסק", ",", "Poland", "."],
    ["שָׁלוֹם", "לכם", "מ-Tel", "Aviv", ":", "3.5", "%", "?"],
]


def training_text() -> list[str]:
    """The tokenizers' training text: every character of the test sentences is in it."""
    sentences = [ex["tokens"] for ex in generate_split("train", 300)] + EXTRA
    return [" ".join(words) for words in sentences]


def _word_piece(lowercase: bool):
    tok = BertWordPieceTokenizer(lowercase=lowercase)
    tok.train_from_iterator(
        training_text(),
        vocab_size=500,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    return tok._tokenizer


def bert(out: Path) -> None:
    """Uncased BERT: WordPiece ("##" continuations), lower-casing and accent-stripping."""
    tok = transformers.BertTokenizerFast(tokenizer_object=_word_piece(True), do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=len(tok),
        max_position_embeddings=POSITIONS,
        pad_token_id=tok.pad_token_id,
        **SHAPE,
    )
    _save(out, tok, transformers.BertModel, config)


def electra(out: Path) -> None:
    """A cased ELECTRA discriminator: WordPiece, an embedding size below the hidden size."""
    tok = transformers.ElectraTokenizerFast(
        tokenizer_object=_word_piece(False), do_lower_case=False
    )
    config = transformers.ElectraConfig(
        vocab_size=len(tok),
        embedding_size=16,
        max_position_embeddings=POSITIONS,
        pad_token_id=tok.pad_token_id,
        **SHAPE,
    )
    _save(out, tok, transformers.ElectraModel, config)


def roberta(out: Path) -> None:
    """RoBERTa: byte-level BPE saved as roberta-base's is, without add_prefix_space; positions
    start after the pad id, so the table holds POSITIONS + pad + 1 rows."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        training_text(),
        vocab_size=600,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    tok = transformers.RobertaTokenizerFast(tokenizer_object=bpe._tokenizer)
    assert not tok.add_prefix_space, "saved as roberta-base is: add_prefix_space false"
    _save(out, tok, transformers.RobertaModel, _roberta_like(transformers.RobertaConfig, tok))


def deberta_v3(out: Path) -> None:
    """DeBERTa-v3-style: a SentencePiece Unigram tokenizer, relative attention only
    (position_biased_input false): its small max_position_embeddings is no limit on length."""
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(
        training_text(),
        vocab_size=500,
        special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
        unk_token="[UNK]",
        show_progress=False,
    )
    tok = transformers.DebertaV2TokenizerFast(
        tokenizer_object=sp._tokenizer,
        bos_token="[CLS]",
        eos_token="[SEP]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )
    config = transformers.DebertaV2Config(
        vocab_size=len(tok),
        max_position_embeddings=POSITIONS,
        relative_attention=True,
        position_buckets=16,
        max_relative_positions=-1,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        type_vocab_size=0,
        pad_token_id=tok.pad_token_id,
        **SHAPE,
    )
    _save(out, tok, transformers.DebertaV2Model, config)


def xlm_r(out: Path) -> None:
    """The demo's own tiny XLM-R (ner/tokenizer.py's Unigram tokenizer), saved as a hub model."""
    from ner.tokenizer import train_tokenizer

    tok = train_tokenizer((text.split(" ") for text in training_text()), 500)
    config = _roberta_like(transformers.XLMRobertaConfig, tok)
    _save(out, tok, transformers.XLMRobertaModel, config)


def _roberta_like(config_class, tok):
    """RoBERTa and XLM-R: positions start after the pad id, one token type."""
    return config_class(
        vocab_size=len(tok),
        max_position_embeddings=POSITIONS + tok.pad_token_id + 1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        type_vocab_size=1,
        **SHAPE,
    )


def _save(out: Path, tokenizer, model_class, config) -> None:
    torch.manual_seed(0)  # the same random encoder every time
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    model_class(config).save_pretrained(str(out))


FAMILIES: dict[str, Callable[[Path], None]] = {
    "bert": bert,
    "electra": electra,
    "roberta": roberta,
    "deberta-v2": deberta_v3,
    "xlm-roberta": xlm_r,
}
