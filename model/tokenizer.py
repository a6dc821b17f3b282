"""Tokenizer: byte-level BPE trained from text, over the `tokenizers` library, with special tokens.

Owns training, encoding, decoding and the tokenizer.json file. Byte-level means every UTF-8 byte is in
the initial alphabet, so there is never an unknown token and decode(encode(s)) == s for every string s;
special tokens (e.g. "<create>") are matched in raw text before BPE, always map to one id, and decode
back to their own text. Knows nothing about the model or the memory operations' meaning.

Digits are always single tokens, so a number is copied digit by digit with the same few tokens whatever its
value (a small model learns that copy far faster than one over hundreds of merged digit groups).

`upper_pairs=True` adds every pair of upper-case letters as a token, with and without a leading space (2 x 676
added tokens, matched in raw text before BPE, longest first): ` BRJEL` becomes ` BR`, `JE`, `L` instead of five
single letters, so a copied code is three steps instead of five and each step but the last is one of 676 tokens
rather than one of 26. Measured (bench/RESULTS.md, eighth round): the small policy then copies codes worse, not
better (1,352 rare tokens are learned more slowly than 26 frequent letters), so it is off by default.

Example:
    tok = Tokenizer.train(texts, vocab_size=1500, special_tokens=["<pad>", "<create>", "</create>"])
    ids = tok.encode("<create>John is in the kitchen.</create>")
    tok.save("runs/tiny/tokenizer.json"); tok = Tokenizer.load("runs/tiny/tokenizer.json")
"""
from __future__ import annotations

import os
import string
from typing import Iterable

from tokenizers import AddedToken
from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from model.checkpoint import write_bytes_atomic


class Tokenizer:
    def __init__(self, backend: _HFTokenizer):
        self._tok = backend
        # id -> text of every added (special) token; decoded verbatim, never through the byte-level map
        self._added = {i: t.content for i, t in backend.get_added_tokens_decoder().items()}

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, special_tokens: list[str] = (),
              min_frequency: int = 2, upper_pairs: bool = False) -> "Tokenizer":
        """Learn byte-level BPE merges from texts until vocab_size (bytes + merges + special tokens); with
        upper_pairs, then add the 1,352 upper-case pair tokens (the vocabulary grows by that much)."""
        special_tokens = list(special_tokens)
        if len(set(special_tokens)) != len(special_tokens):
            raise ValueError(f"duplicate special tokens in {special_tokens}")
        if any(not s for s in special_tokens):
            raise ValueError("special tokens must be non-empty strings")
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(special_tokens):
            raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(alphabet)} bytes "
                             f"plus {len(special_tokens)} special tokens")
        tok = _HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=special_tokens, initial_alphabet=alphabet,
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        if upper_pairs:
            pairs = [a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]
            tok.add_tokens([AddedToken(prefix + p, normalized=False) for prefix in (" ", "") for p in pairs])
        return cls(tok)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer.json written by `save`."""
        return cls(_HFTokenizer.from_file(str(path)))

    def save(self, path: str | os.PathLike) -> None:
        """Write tokenizer.json atomically (temp file in the same directory, fsync, rename)."""
        write_bytes_atomic(path, self._tok.to_str(pretty=True).encode("utf-8"))

    # ---- use -------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (ids are 0 .. vocab_size - 1)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> list[str]:
        return [t.content for t in self._tok.get_added_tokens_decoder().values() if t.special]

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, special tokens kept as their exact text.

        Runs of ordinary ids go through the byte-level decoder; special ids are pasted verbatim (the
        byte-level decoder would remap non-ASCII characters inside a special token's text).
        """
        parts, run = [], []
        for i in ids:
            i = int(i)
            if i in self._added:
                if run:
                    parts.append(self._tok.decode(run, skip_special_tokens=False))
                    run = []
                parts.append(self._added[i])
            else:
                run.append(i)
        if run:
            parts.append(self._tok.decode(run, skip_special_tokens=False))
        return "".join(parts)

    def token_id(self, token: str) -> int:
        """Id of a token (special or learned); KeyError if it is not one token."""
        i = self._tok.token_to_id(token)
        if i is None:
            raise KeyError(f"{token!r} is not a single token of this vocabulary")
        return i

    def id_to_token(self, i: int) -> str:
        tok = self._tok.id_to_token(i)
        if tok is None:
            raise KeyError(f"id {i} is outside the vocabulary (size {self.vocab_size})")
        return tok
