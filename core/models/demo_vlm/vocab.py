"""The demo model's word-level vocabulary and tokenizer.

Words come from three places: the reference answers of the demo world to every answer key (the
paper's 10 and the pool's; enumerated from sampled scene contents with a fixed seed), the instruction texts (the paper's 10 and the wider prompt pool) and the
LLaVA-1.5 prompt (``USER: <image>\\n... ASSISTANT:``). The tokenizer lower-cases, splits on whitespace
and punctuation, maps unknown words to ``<unk>`` and is wrapped in ``PreTrainedTokenizerFast`` so it
saves and reloads through ``AutoTokenizer`` offline. No BOS token is added.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

SPECIAL = ("<pad>", "<unk>", "<s>", "</s>", "<image>")
IMAGE_TOKEN = "<image>"
PROMPT_WORDS = ("user", ":", "assistant")
#: A comma written right after a word ("a cat, a dog"), as opposed to a spaced one ("yes , there");
#: the reference answers use both, and decoding must give their exact text back.
GLUED_COMMA = "##,"

_SPLIT = re.compile(r"##,|\w+|[^\w\s]")
_GLUE = re.compile(r"(?<=\S),")


def split_words(text: str) -> list[str]:
    """How the tokenizer splits ordinary text (lower-cased words, single punctuation marks and
    :data:`GLUED_COMMA` for a comma attached to the previous word)."""
    return _SPLIT.findall(_GLUE.sub(" " + GLUED_COMMA, text.lower()))


def instruction_texts() -> list[str]:
    """Every instruction text the model is trained on or likely to see (paper + pool)."""
    from core.models.instructions import PAPER_INSTRUCTIONS, pool_instructions

    return [i.text for i in PAPER_INSTRUCTIONS] + [i.text for i in pool_instructions()]


def answer_words(n_samples: int = 20000, seed: int = 12345) -> set[str]:
    """Words of the demo world's reference answers, from ``n_samples`` sampled contents."""
    from core.data.demo.answers import NUMBER_WORDS, answer
    from core.data.demo.content import (
        ACTIONS,
        ANIMALS,
        COLOUR_NAMES,
        DENSE_CLASSES,
        FOODS,
        OBJECTS,
        sample_content,
    )
    from core.models.demo_vlm.tasks import ANSWER_KEYS

    words: set[str] = set(NUMBER_WORDS) | set(COLOUR_NAMES) | set(DENSE_CLASSES)
    for kind in (*ANIMALS, *FOODS, *OBJECTS, "person"):
        words.update(split_words(kind))
    for phrase in ACTIONS:
        words.update(split_words(phrase))
    rng = np.random.default_rng(seed)
    for _ in range(n_samples):
        content = sample_content(rng)
        for key in ANSWER_KEYS:
            words.update(split_words(answer(content, key)))
    return words


def build_vocabulary() -> list[str]:
    """The full token list: special tokens first, then the sorted words."""
    return list(_vocabulary())


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    # deterministic (fixed sampling seed) and a few seconds to enumerate: once per process
    words = answer_words() | set(PROMPT_WORDS) | {GLUED_COMMA}
    for text in instruction_texts():
        words.update(split_words(text))
    words -= set(SPECIAL)
    return (*SPECIAL, *sorted(words))


def build_tokenizer(vocabulary: list[str] | None = None):
    """A word-level ``PreTrainedTokenizerFast`` over ``vocabulary`` (default :func:`build_vocabulary`).

    Returns
    -------
    tokenizer : transformers.PreTrainedTokenizerFast
        Left padding; ``<image>`` is a special token matched verbatim; decoding joins words with
        single spaces and glues :data:`GLUED_COMMA` to the previous word, which gives the
        reference answers' exact text back.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast

    vocabulary = vocabulary or build_vocabulary()
    vocab = {w: i for i, w in enumerate(vocabulary)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Lowercase(), normalizers.Replace(Regex(_GLUE.pattern), " " + GLUED_COMMA)]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"##,|[^\w\s]"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    return fast
