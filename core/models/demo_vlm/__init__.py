"""The demo model: a small LLaVA trained from scratch on the demo world (the registry's default).

``python -m core demo train-model`` trains it (:func:`train_demo_model`) and saves a Hugging Face
folder to :data:`DEMO_FOLDER` (``core/models/assets/demo-vlm``)::

    from transformers import AutoProcessor, LlavaForConditionalGeneration
    model = LlavaForConditionalGeneration.from_pretrained(DEMO_FOLDER)
    processor = AutoProcessor.from_pretrained(DEMO_FOLDER)
    prompt = "USER: <image>\\nHow many animals are there in the image? ASSISTANT:"

Recipe (:class:`~core.models.demo_vlm.architecture.Recipe`, 1.8 M parameters, 7.2 MB): 64 px images
cut into 16 px patches, so each of the 16 image tokens is one cell of the demo world's 4 x 4 grid;
CLIP-style vision tower (128 wide, 4 layers) and Llama-style decoder (128 wide, 4 layers,
word-level vocabulary). Scenes of the ``"train"`` stream drawn at 128 px (never the stimuli).
Phase 1: the vision tower alone on dense per-cell targets (classes present, item kind, person
action, surface colour, where the largest thing stands; global dominant colour and environment),
1,200 steps of 64 images. Phase 2: everything, answer-token loss on 6 turns per image (the
paper's 10 and every prompt of the pool, isolated by a 4-D mask) plus the same auxiliary loss,
2,000 steps of 24 images from 12,000 scenes, AdamW 2e-3 with warm-up and cosine decay. Phase 3
(polish): the answer loss alone at a lower learning rate, with 12,000 fresh scenes drawn at the
stimuli's 256 px and more turns for the long exact object lists (VQ1, VQ3, IC, VR). See ``training.json`` beside the
weights for the recipe and the time it took.

Modules: :mod:`.vocab` (word-level tokenizer), :mod:`.architecture` (recipe, config, processor),
:mod:`.data` (training scenes from the ``"train"`` stream, never the stimuli), :mod:`.train`
(isolated-turn answer loss plus dense vision supervision), :mod:`.evaluate` (held-out scores and
the shuffled-image control).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from core.models.registry import DEMO_FOLDER  # where the committed checkpoint lives

#: Recipe/metadata file written next to the weights.
TRAINING_FILE = "training.json"


def load_demo_model(folder: str | Path = DEMO_FOLDER):
    """Load the trained model (eval mode, float32) and its processor, offline.

    Returns
    -------
    model : LlavaForConditionalGeneration
    processor : LlavaProcessor
    """
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"no demo model in {folder}; train it with `python -m core demo train-model`"
        )
    model = LlavaForConditionalGeneration.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    return model, processor


def random_twin(folder: str | Path = DEMO_FOLDER, seed: int = 0):
    """The random-init control: the demo model's config with random weights from ``seed``."""
    import torch
    from transformers import AutoConfig, LlavaForConditionalGeneration

    config = AutoConfig.from_pretrained(Path(folder), local_files_only=True)
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(config).eval()


def answer(model, processor, image, instruction: str, max_new_tokens: int = 48) -> str:
    """Greedy answer of the model to one image and one instruction (text or paper id)."""
    import torch

    from core.models.demo_vlm.architecture import prompt
    from core.models.instructions import resolve_instruction

    text = resolve_instruction(instruction).text

    enc = processor(images=[image], text=[prompt(text)], return_tensors="pt")
    with torch.inference_mode():
        seq = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=processor.tokenizer.eos_token_id,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
    return processor.tokenizer.decode(
        seq[0, enc["input_ids"].shape[1] :], skip_special_tokens=True
    ).strip()


def train_demo_model(
    out: str | Path = DEMO_FOLDER,
    seed: int = 0,
    recipe=None,
    threads: int = 2,
    workers: int = 2,
    progress: bool = True,
    log=print,
    init_from: str | Path | None = None,
) -> dict:
    """Train the demo model and save it (model, processor, ``training.json``) to ``out``.

    Deterministic for a given seed and thread count. Training scenes come from the demo world's
    ``"train"`` stream only.

    Parameters
    ----------
    init_from : path, optional
        Start from an earlier checkpoint instead of random weights (:func:`warm_start`): every
        weight of the same shape is copied, and word embeddings are copied word by word (the
        vocabulary may have grown). Default: from scratch.

    Returns
    -------
    summary : dict
        Recipe, timings, parameter count, folder size.
    """
    import torch

    from core.models.demo_vlm.architecture import Recipe, build_model, build_processor
    from core.models.demo_vlm.data import training_scenes
    from core.models.demo_vlm.train import train
    from core.models.demo_vlm.vocab import build_tokenizer
    from core.storage import write_json

    recipe = recipe or Recipe()
    if recipe.seed != seed:
        from dataclasses import replace

        recipe = replace(recipe, seed=seed)
    torch.set_num_threads(threads)
    t0 = time.time()
    cpu0 = time.process_time()
    tokenizer = build_tokenizer()
    processor = build_processor(recipe, tokenizer)
    data = training_scenes(processor, recipe, workers=workers, progress=progress)
    t_data = time.time() - t0
    if log:
        log(f"drew {len(data)} training scenes in {t_data:.0f} s")
    model = build_model(recipe, tokenizer)
    if init_from is not None:
        warm_start(model, tokenizer, init_from)
    summary = train(model, tokenizer, data, recipe, log=log if progress else None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    total = time.time() - t0
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    info = {
        "recipe": recipe.to_dict(),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(summary["train_seconds"], 1),
        "total_seconds": round(total, 1),
        "main_process_cpu_seconds": round(time.process_time() - cpu0, 1),
        "threads": threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "history": summary["history"],
        "training_stream": "train",
        "init_from": None if init_from is None else Path(init_from).name,
    }
    write_json(out / TRAINING_FILE, info)
    info["folder_bytes"] = size
    return info


def warm_start(model, tokenizer, folder: str | Path) -> int:
    """Copy the weights of an earlier checkpoint into ``model`` (same architecture, possibly a
    larger vocabulary): every tensor of equal shape, and the word embeddings row by row for the
    words both vocabularies have.

    Returns
    -------
    copied : int
        Number of parameter tensors copied in full.
    """
    import torch
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    old = LlavaForConditionalGeneration.from_pretrained(Path(folder), local_files_only=True)
    old_tok = AutoTokenizer.from_pretrained(Path(folder), local_files_only=True)
    old_state = old.state_dict()
    new_state = model.state_dict()
    copied = 0
    old_vocab = old_tok.get_vocab()
    new_vocab = tokenizer.get_vocab()
    pairs = [(i, old_vocab[w]) for w, i in new_vocab.items() if w in old_vocab]
    rows_new = torch.tensor([p[0] for p in pairs])
    rows_old = torch.tensor([p[1] for p in pairs])
    with torch.no_grad():
        for name, tensor in new_state.items():
            src = old_state.get(name)
            if src is None:
                continue
            if src.shape == tensor.shape:
                tensor.copy_(src)
                copied += 1
            elif src.ndim == 2 and src.shape[1] == tensor.shape[1] and "embed" in name:
                tensor[rows_new] = src[rows_old]
    model.load_state_dict(new_state)
    model.tie_weights()
    return copied
