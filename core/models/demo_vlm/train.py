"""Training the demo model: answer-token loss on isolated turns plus dense vision supervision.

One training example is one image with some of its instruction turns packed into one sequence
(each turn is one prompt of :func:`~core.models.demo_vlm.tasks.training_prompts`: the paper's 10
and every other prompt of the wider pool, answered by the prompt's answer key)::

    user : <image> x16 | instr_1 assistant : answer_1 </s> | instr_2 assistant : answer_2 </s> | ...

A 4-D attention mask lets every turn see the shared image prefix and its own earlier tokens only,
and position ids restart after the prefix for each turn, so each turn is computed exactly as the
separate sequence ``USER: <image>\\n{instruction} ASSISTANT: {answer}</s>`` would be (the image
prefix is computed once per image instead of once per turn). The loss is cross-entropy on the
answer tokens and ``</s>`` only. The vision tower gets an auxiliary loss from linear heads on its
patch states (one patch per grid cell): the dense classes in the cell (multi-label), the item kind
in the cell and a person's action. A last polish phase (``Recipe.polish_steps``) trains on the
answer loss alone, with fresh scenes and more turns for the long exact answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.data.demo.content import COLOUR_NAMES, DENSE_CLASSES, ENVIRONMENTS
from core.data.demo.scenes import INSTRUCTION_IDS
from core.models.demo_vlm.architecture import Recipe
from core.models.demo_vlm.data import ACTION_NAMES, ITEM_KINDS, SceneBatch
from core.models.demo_vlm.tasks import ANSWER_KEYS, training_prompts


def _torch():
    import torch

    return torch


def make_aux_head(recipe: Recipe):
    """Linear heads on the vision tower's patch states (discarded after training)."""
    nn = _torch().nn

    class AuxHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = recipe.vision_hidden
            self.classes = nn.Linear(d, len(DENSE_CLASSES))
            self.kind = nn.Linear(d, len(ITEM_KINDS) + 1)
            self.action = nn.Linear(d, len(ACTION_NAMES))
            self.colour = nn.Linear(d, len(COLOUR_NAMES))
            self.cell_colour = nn.Linear(d, len(COLOUR_NAMES))
            self.environment = nn.Linear(d, len(ENVIRONMENTS))
            self.largest = nn.Linear(d, 1)

        def forward(self, patches):
            pooled = patches.mean(1)
            return {
                "classes": self.classes(patches),
                "kind": self.kind(patches),
                "action": self.action(patches),
                "colour": self.colour(pooled),
                "cell_colour": self.cell_colour(patches),
                "environment": self.environment(pooled),
                "largest": self.largest(patches)[..., 0],
            }

    return AuxHead()


@dataclass
class Packer:
    """Builds packed multi-turn sequences (see the module docstring) from :class:`SceneBatch` rows.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerFast
    n_image_tokens : int
    """

    tokenizer: object
    n_image_tokens: int
    prefix: list[int] = field(init=False)
    instructions: list[list[int]] = field(init=False)
    #: Per prompt: the row of its answer in :attr:`SceneBatch.answer_ids` (index of its key).
    answer_row: list[int] = field(init=False)

    def __post_init__(self) -> None:
        tok = self.tokenizer
        # "USER: <image>\n{instruction} ASSISTANT:" split into the shared prefix and the turn part
        self.prefix = (
            tok("USER:", add_special_tokens=False)["input_ids"]
            + [tok.convert_tokens_to_ids("<image>")] * self.n_image_tokens
        )
        prompts = training_prompts()
        self.instructions = [
            tok(text + " ASSISTANT:", add_special_tokens=False)["input_ids"] for text, _ in prompts
        ]
        self.answer_row = [ANSWER_KEYS.index(key) for _, key in prompts]

    def pack(self, data: SceneBatch, turns: list[list[int]] | None = None) -> dict:
        """Tensors for a batch: input_ids, position_ids, labels (B, L) and a (B, 1, L, L) mask.

        Parameters
        ----------
        data : SceneBatch
            The batch's scenes.
        turns : list (per scene) of list of prompt indices, optional
            Which turns to include (indices into :func:`training_prompts`; default: the
            paper's 10, in order).
        """
        torch = _torch()
        n = len(data)
        p = len(self.prefix)
        seqs, poss, labs, segs = [], [], [], []
        for b in range(n):
            ids, pos, lab, seg = list(self.prefix), list(range(p)), [-100] * p, [0] * p
            for t, j in enumerate(turns[b] if turns is not None else range(len(INSTRUCTION_IDS))):
                q = self.instructions[j]
                r = self.answer_row[j]
                a = data.answer_ids[b, r, : data.answer_len[b, r]].astype(np.int64).tolist()
                ids += q + a
                pos += list(range(p, p + len(q) + len(a)))
                # the token before each answer token predicts it
                lab += [-100] * (len(q) - 1) + a + [-100]
                seg += [t + 1] * (len(q) + len(a))
            seqs.append(ids)
            poss.append(pos)
            labs.append(lab)
            segs.append(seg)
        length = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((n, length), pad, dtype=torch.long)
        position_ids = torch.zeros((n, length), dtype=torch.long)
        labels = torch.full((n, length), -100, dtype=torch.long)
        segment = torch.full((n, length), -1, dtype=torch.long)
        for b in range(n):
            k = len(seqs[b])
            input_ids[b, :k] = torch.tensor(seqs[b])
            position_ids[b, :k] = torch.tensor(poss[b])
            labels[b, :k] = torch.tensor(labs[b])
            segment[b, :k] = torch.tensor(segs[b])
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        sq, sk = segment[:, :, None], segment[:, None, :]
        mask = causal[None] & ((sk == 0) | (sk == sq)) & (sk >= 0)
        mask |= torch.eye(length, dtype=torch.bool)[None]  # padding rows see themselves (no NaN)
        return {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "labels": labels,
            "attention_mask": mask[:, None],
        }


def aux_losses(out: dict, targets: dict, largest_weight: float):
    """Sum of the auxiliary vision losses (per cell: classes, kind, action, surface colour;
    global: dominant colour, environment; ``largest_weight`` times the cross-entropy of the
    largest thing's cell over the cells, scenes with things only)."""
    F = _torch().nn.functional
    loss = F.binary_cross_entropy_with_logits(out["classes"], targets["classes"])
    loss = loss + F.cross_entropy(out["kind"].flatten(0, 1), targets["kind"].flatten())
    act = targets["action"].flatten()
    if (act >= 0).any():
        loss = loss + F.cross_entropy(out["action"].flatten(0, 1)[act >= 0], act[act >= 0])
    col = targets["cell_colour"].flatten()
    if (col >= 0).any():
        loss = loss + F.cross_entropy(out["cell_colour"].flatten(0, 1)[col >= 0], col[col >= 0])
    loss = loss + F.cross_entropy(out["colour"], targets["colour"])
    loss = loss + F.cross_entropy(out["environment"], targets["environment"])
    big = targets["largest_cell"]
    if largest_weight and (big >= 0).any():
        loss = loss + largest_weight * F.cross_entropy(out["largest"][big >= 0], big[big >= 0])
    return loss


def vision_forward(model, pixel_values):
    """Patch states used as image features (last vision layer, CLS dropped), as LlavaModel does."""
    vision = model.model.vision_tower(pixel_values, output_hidden_states=True)
    return vision.hidden_states[model.config.vision_feature_layer][:, 1:]


def forward_losses(
    model,
    aux_head,
    batch: dict,
    pixel_values,
    aux_targets: dict | None,
    largest_weight: float,
):
    """Answer-token loss and auxiliary loss of one packed batch.

    The image features are computed as ``LlavaModel`` does (last vision layer, CLS dropped,
    projector) and scattered into the ``<image>`` positions; the decoder then runs on the packed
    sequence with the 4-D mask.
    """
    torch = _torch()
    F = torch.nn.functional
    inner = model.model
    patches = vision_forward(model, pixel_values)
    image_embeds = inner.multi_modal_projector(patches)
    input_ids = batch["input_ids"]
    embeds = inner.get_input_embeddings()(input_ids)
    image_mask = (input_ids == model.config.image_token_id)[..., None]
    embeds = embeds.masked_scatter(image_mask, image_embeds.to(embeds.dtype))
    out = inner.language_model(
        inputs_embeds=embeds,
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    )
    hidden = out.last_hidden_state
    labels = batch["labels"]
    keep = labels != -100
    logits = model.lm_head(hidden[keep])
    lm_loss = F.cross_entropy(logits, labels[keep])
    aux_loss = torch.zeros((), dtype=lm_loss.dtype)
    if aux_head is not None and aux_targets is not None:
        aux_loss = aux_losses(aux_head(patches), aux_targets, largest_weight)
    return lm_loss, aux_loss


def aux_tensors(data: SceneBatch) -> dict:
    torch = _torch()
    return {
        "classes": torch.from_numpy(data.cell_classes.astype(np.float32)),
        "kind": torch.from_numpy(data.cell_kind.astype(np.int64)),
        "action": torch.from_numpy(data.cell_action.astype(np.int64)),
        "cell_colour": torch.from_numpy(data.cell_colour.astype(np.int64)),
        "colour": torch.from_numpy(data.colour.astype(np.int64)),
        "environment": torch.from_numpy(data.environment.astype(np.int64)),
        "largest_cell": torch.from_numpy(data.largest_cell.astype(np.int64)),
    }


def key_weights(recipe: Recipe) -> np.ndarray:
    """Sampling weight of each answer key (:data:`ANSWER_KEYS`): the recipe's ``turn_weights``
    for the paper's 10, ``pool_weight`` for every other key unless ``key_weight_overrides``
    names it.

    Raises
    ------
    ValueError
        For an override naming no pool key.
    """
    n_pool = len(ANSWER_KEYS) - len(INSTRUCTION_IDS)
    w = np.concatenate(
        [np.asarray(recipe.turn_weights, np.float64), np.full(n_pool, recipe.pool_weight)]
    )
    for key, weight in recipe.key_weight_overrides:
        if key not in ANSWER_KEYS[len(INSTRUCTION_IDS) :]:
            raise ValueError(f"key_weight_overrides: {key!r} is not an answer key of the pool")
        w[ANSWER_KEYS.index(key)] = float(weight)
    return w


def polish_key_weights(recipe: Recipe) -> np.ndarray:
    """:func:`key_weights` times the recipe's ``polish_key_weights`` factors (the polish phase).

    Raises
    ------
    ValueError
        For a factor naming no answer key.
    """
    w = key_weights(recipe)
    for key, factor in recipe.polish_key_weights:
        if key not in ANSWER_KEYS:
            raise ValueError(f"polish_key_weights: {key!r} is not an answer key")
        w[ANSWER_KEYS.index(key)] *= float(factor)
    return w


def sample_turns(
    rng: np.random.Generator, n: int, recipe: Recipe, weights: np.ndarray | None = None
) -> list[list[int]]:
    """For each of ``n`` images, which prompts it carries this step (sorted prompt indices).

    ``turns_per_image`` distinct answer keys are drawn with probabilities proportional to
    ``weights`` (default :func:`key_weights`); each key is asked by one of its prompts, drawn
    uniformly.
    """
    prompts = training_prompts()
    by_key: dict[int, list[int]] = {}
    for p, (_, key) in enumerate(prompts):
        by_key.setdefault(ANSWER_KEYS.index(key), []).append(p)
    w = key_weights(recipe) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    k = min(recipe.turns_per_image, len(ANSWER_KEYS))
    out = []
    for _ in range(n):
        keys = rng.choice(len(ANSWER_KEYS), size=k, replace=False, p=w)
        out.append(sorted(int(by_key[j][rng.integers(len(by_key[j]))]) for j in keys))
    return out


def lr_at(step: int, recipe: Recipe, polish: bool = False) -> float:
    """Linear warm-up then cosine decay to ``lr * min_lr_ratio`` (the main phase's, or with
    ``polish`` the polish phase's steps, peak and warm-up)."""
    lr = recipe.polish_lr if polish else recipe.lr
    warmup = recipe.polish_warmup if polish else recipe.warmup_steps
    steps = recipe.polish_steps if polish else recipe.steps
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    floor = lr * recipe.min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _adamw(params: list, recipe: Recipe, lr: float):
    """AdamW with the recipe's weight decay on matrices only (not on biases and norms)."""
    return _torch().optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": recipe.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.98),
    )


class _AnswerSteps:
    """The answer-loss training loop, shared by the main and the polish phase."""

    def __init__(self, model, packer, recipe, history, t0, log, log_every) -> None:
        self.model, self.packer, self.recipe = model, packer, recipe
        self.history, self.t0, self.log, self.log_every = history, t0, log, log_every

    def run(
        self, data, rng, opt, params, aux_head, callback, callback_every, polish: bool = False
    ) -> None:
        torch = _torch()
        recipe, model = self.recipe, self.model
        n_steps = recipe.polish_steps if polish else recipe.steps
        weights = polish_key_weights(recipe) if polish else key_weights(recipe)
        name = "polish step" if polish else "step"
        n = len(data)
        order = rng.permutation(n)
        cursor = 0
        running = {"lm": 0.0, "aux": 0.0, "k": 0}
        for step in range(n_steps):
            if cursor + recipe.batch_images > n:
                order = rng.permutation(n)
                cursor = 0
            idx = np.sort(order[cursor : cursor + recipe.batch_images])
            cursor += recipe.batch_images
            sub = data.take(idx)
            batch = self.packer.pack(sub, sample_turns(rng, len(idx), recipe, weights))
            pixels = torch.from_numpy(sub.pixel_values.astype(np.float32))
            lr = lr_at(step, recipe, polish)
            for g in opt.param_groups:
                g["lr"] = lr
            lm_loss, aux_loss = forward_losses(
                model,
                aux_head,
                batch,
                pixels,
                aux_tensors(sub) if aux_head is not None else None,
                recipe.largest_weight,
            )
            loss = lm_loss + recipe.aux_weight * aux_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            running["lm"] += lm_loss.item()
            running["aux"] += aux_loss.item()
            running["k"] += 1
            last = step + 1 == n_steps
            if self.log is not None and ((step + 1) % self.log_every == 0 or last):
                k = running["k"]
                elapsed = time.time() - self.t0
                row = {"step": step + 1, "lm": running["lm"] / k, "aux": running["aux"] / k}
                self.history.append({**row, "s": elapsed, **({"polish": True} if polish else {})})
                self.log(
                    f"{name} {step + 1}/{n_steps}  answer loss {row['lm']:.4f}  "
                    f"aux loss {row['aux']:.4f}  lr {lr:.2e}  {elapsed:.0f} s"
                )
                running = {"lm": 0.0, "aux": 0.0, "k": 0}
            if callback is not None and callback_every and (step + 1) % callback_every == 0:
                model.eval()
                callback(step + 1)
                model.train()


def train(
    model,
    tokenizer,
    data: SceneBatch,
    recipe: Recipe,
    log: Callable[[str], None] | None = print,
    log_every: int = 50,
    callback: Callable[[int], None] | None = None,
    callback_every: int = 0,
) -> dict:
    """Train ``model`` in place on ``data`` following ``recipe``; returns a summary dict.

    Deterministic for a given recipe, data and thread count: the batch order comes from
    ``numpy.random.default_rng(recipe.seed)`` and the auxiliary heads are seeded from it too.
    The vision and main phases use the first ``recipe.n_train_scenes`` scenes of ``data``; the
    polish phase (``recipe.polish_steps``) uses all of them, with its own generator
    (``default_rng([seed, 8])``) and optimizer, so that it runs the same on a checkpoint saved
    after the main phase.
    """
    torch = _torch()
    rng = np.random.default_rng([recipe.seed, 7])
    torch.manual_seed(recipe.seed + 1)
    aux_head = make_aux_head(recipe)
    packer = Packer(tokenizer, recipe.n_image_tokens)
    params = list(model.parameters()) + list(aux_head.parameters())
    opt = _adamw(params, recipe, recipe.lr)
    model.train()
    aux_head.train()
    n = min(len(data), recipe.n_train_scenes)  # the polish phase's fresh scenes come after
    t0 = time.time()
    if recipe.vision_steps:
        vparams = list(model.model.vision_tower.parameters()) + list(aux_head.parameters())
        vopt = torch.optim.AdamW(vparams, lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.0)
        vrun = 0.0
        for step in range(recipe.vision_steps):
            idx = rng.choice(n, size=recipe.vision_batch, replace=False)
            sub = data.take(np.sort(idx))
            for g in vopt.param_groups:
                g["lr"] = recipe.lr * min(1.0, (step + 1) / recipe.warmup_steps)
            pixels = torch.from_numpy(sub.pixel_values.astype(np.float32))
            loss = aux_losses(
                aux_head(vision_forward(model, pixels)), aux_tensors(sub), recipe.largest_weight
            )
            vopt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vparams, recipe.grad_clip)
            vopt.step()
            vrun += loss.item()
            if log is not None and (step + 1) % log_every == 0:
                log(
                    f"vision step {step + 1}/{recipe.vision_steps}  aux loss {vrun / log_every:.4f}"
                    f"  {time.time() - t0:.0f} s"
                )
                vrun = 0.0
        del vopt
    history: list[dict] = []
    steps = _AnswerSteps(model, packer, recipe, history, t0, log, log_every)
    # the first n scenes as views (no copy); the polish phase's fresh scenes come after them
    steps.run(data.take(slice(0, n)), rng, opt, params, aux_head, callback, callback_every)
    if recipe.polish_steps:
        # fresh optimizer, own data order; the answer loss alone (the aux heads are not used)
        model_params = list(model.parameters())
        steps.run(
            data,
            np.random.default_rng([recipe.seed, 8]),
            _adamw(model_params, recipe, recipe.polish_lr),
            model_params,
            None,
            callback,
            callback_every,
            polish=True,
        )
    model.eval()
    return {"train_seconds": time.time() - t0, "history": history}
