"""Which models exist, by short name, and how to open one.

A model is named by a registry short name (``"demo-vlm"``, ``"llava-1.5-7b"``, ...), a Hugging Face
hub id, or a local folder. Built-in names are in :data:`BUILTIN`; users add local folders with
:func:`register_local` (recorded in ``<home>/models.json``). Prefix any name with ``random:`` for its
random-init twin (same config, random weights, fixed seed). ``vision:<vlm>`` is a VLM's vision tower;
``text:<vlm>`` and ``length:<vlm>`` are controls computed from ``<vlm>``'s stored answers (its language
model fed the answer alone, and the answer's length): :data:`CONTROL_PREFIXES`.

The default model, ``demo-vlm``, is the folder ``core/models/assets/demo-vlm``: any LLaVA-format
checkpoint saved there with ``save_pretrained`` (config.json with ``model_type: llava``, safetensors
weights, and the processor: image processor + tokenizer, optionally a chat template) is picked up with
no code change. Weights load offline only (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.config import REPO_ROOT, home
from core.storage import ArtifactError, read_json, write_json

DEFAULT_MODEL = "demo-vlm"
DEMO_FOLDER = REPO_ROOT / "core" / "models" / "assets" / "demo-vlm"
RANDOM_PREFIX = "random:"
#: ``"vision:<vlm>"`` is the vision tower of a VLM, the vision-only baseline.
VISION_PREFIX = "vision:"
#: ``"text:<vlm>"``: the VLM's own language model fed its stored answer without the image (the
#: same pooling); ``"length:<vlm>"``: the answer's length in tokens and its square. Both read the
#: answers ``<vlm>`` generated for each (image, instruction) (see
#: :mod:`core.models.adapters.controls`). Prefix -> adapter family.
CONTROL_PREFIXES: dict[str, str] = {"text:": "text_control", "length:": "length_control"}
#: Adapter family -> prefix (the inverse of :data:`CONTROL_PREFIXES`).
CONTROL_FAMILIES: dict[str, str] = {v: k for k, v in CONTROL_PREFIXES.items()}


class ModelError(ValueError):
    """A model name, folder or option is unknown, missing or not allowed."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that identifies a model.

    Parameters
    ----------
    name : str
        Registry name (or the id / folder given).
    source : str
        Hub id or absolute local folder.
    revision : str or None
        Hub revision (commit hash preferred).
    family : str or None
        Adapter family; None = detect from ``config.json``'s ``model_type``. Derived specs
        set it: ``"vision_tower"`` (``vision:``), ``"text_control"`` (``text:``),
        ``"length_control"`` (``length:``); their ``name`` stays the source model's.
    trust_remote_code : bool
        Opt-in to run the model's own code (only with a pinned ``revision``).
    random_init : bool
        Random-weight twin: same config, random weights from ``seed``.
    seed : int
        Seed of the random twin.
    role : str
        ``"vlm"`` (generative), ``"vision"`` (ViT) or ``"clip"``; informative.
    """

    name: str
    source: str
    revision: str | None = None
    family: str | None = None
    trust_remote_code: bool = False
    random_init: bool = False
    seed: int = 0
    role: str = "vlm"

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute() or self.source.startswith((".", "~"))

    def display_name(self) -> str:
        if self.family in CONTROL_FAMILIES:
            source = f"{RANDOM_PREFIX}{self.name}" if self.random_init else self.name
            return f"{CONTROL_FAMILIES[self.family]}{source}"
        name = f"{VISION_PREFIX}{self.name}" if self.family == "vision_tower" else self.name
        return f"{RANDOM_PREFIX}{name}" if self.random_init else name

    def identity(self) -> dict:
        """Fields that determine the model's outputs (for cache and artifact keys)."""
        if self.is_local:
            source, revision = f"local:{local_fingerprint(self)}", self.revision
        else:
            source, revision = self.source, hub_commit(self) or self.revision
        out = {
            "source": source,
            "revision": revision,
            "random_init": self.random_init,
            "seed": self.seed if self.random_init else None,
        }
        if self.family == "vision_tower":
            out["vision_tower"] = True
        if self.family in CONTROL_FAMILIES:
            out["control"] = CONTROL_FAMILIES[self.family].rstrip(":")
        return out

    def slug(self) -> str:
        """A folder-safe name, e.g. ``random-demo-vlm``."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.display_name()).strip("-")


#: Built-in short names.
BUILTIN: dict[str, dict] = {
    DEFAULT_MODEL: {"source": str(DEMO_FOLDER), "family": "llava"},
    "instructblip-vicuna-7b": {"source": "Salesforce/instructblip-vicuna-7b"},
    "instructblip-vicuna-13b": {"source": "Salesforce/instructblip-vicuna-13b"},
    "idefics-9b-instruct": {"source": "HuggingFaceM4/idefics-9b-instruct"},
    "llava-1.5-7b": {"source": "llava-hf/llava-1.5-7b-hf"},
    "llava-1.5-13b": {"source": "llava-hf/llava-1.5-13b-hf"},
    "idefics2-8b": {"source": "HuggingFaceM4/idefics2-8b"},
    "smolvlm-instruct": {"source": "HuggingFaceTB/SmolVLM-Instruct"},
    "qwen2-vl-7b": {"source": "Qwen/Qwen2-VL-7B-Instruct"},
    "qwen2.5-vl-7b": {"source": "Qwen/Qwen2.5-VL-7B-Instruct"},
    "mplug-owl-7b": {"source": "MAGAer13/mplug-owl-llama-7b", "family": "mplug_owl"},
    "vit-h": {"source": "google/vit-huge-patch14-224-in21k", "role": "vision"},
    "clip-vit-l14": {"source": "openai/clip-vit-large-patch14", "role": "clip"},
}


def _user_path() -> Path:
    return home() / "models.json"


def user_models() -> dict[str, dict]:
    """Name -> entry of the user-registered models."""
    path = _user_path()
    if not path.exists():
        return {}
    try:
        return dict(read_json(path))
    except ArtifactError:
        return {}


def available() -> dict[str, dict]:
    """Every registered name (built-in and user) -> entry."""
    return {**BUILTIN, **user_models()}


def register_local(
    name: str,
    folder: str | Path,
    family: str | None = None,
    role: str = "vlm",
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> ModelSpec:
    """Register a local Hugging Face folder under a short name.

    Raises
    ------
    ModelError
        If the folder has no ``config.json``, or the name is reserved.
    """
    folder = Path(folder).expanduser().resolve()
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is not a model folder (no config.json)")
    if name in BUILTIN or name.startswith((RANDOM_PREFIX, VISION_PREFIX, *CONTROL_PREFIXES)):
        raise ModelError(f"the name {name!r} is reserved")
    entries = user_models()
    entries[name] = {
        "source": str(folder),
        "family": family,
        "role": role,
        "trust_remote_code": trust_remote_code,
        "revision": revision,
    }
    write_json(_user_path(), entries)
    return resolve(name)


#: family -> "module:Class"
FAMILIES: dict[str, str] = {
    "llava": "core.models.adapters.llava:LlavaAdapter",
    "instructblip": "core.models.adapters.instructblip:InstructBlipAdapter",
    "idefics": "core.models.adapters.idefics:IdeficsAdapter",
    "idefics3": "core.models.adapters.idefics3:Idefics3Adapter",
    "qwen2_vl": "core.models.adapters.qwen2vl:Qwen2VLAdapter",
    "mplug_owl": "core.models.adapters.mplug_owl:MplugOwlAdapter",
    "vit": "core.models.adapters.vit:VitAdapter",
    "vision_tower": "core.models.adapters.vision_tower:VisionTowerAdapter",
    "clip": "core.models.adapters.clip:ClipAdapter",
    "text_control": "core.models.adapters.controls:TextControlAdapter",
    "length_control": "core.models.adapters.controls:LengthControlAdapter",
    "generic": "core.models.adapters.generic:GenericAdapter",
}


#: Families whose adapters encode images and generate nothing (one feature space, no
#: instructions); every other family answers instructions.
ENCODER_FAMILIES: tuple[str, ...] = ("vit", "vision_tower", "clip")

#: config.json model_type -> family
MODEL_TYPES: dict[str, str] = {
    "llava": "llava",
    "instructblip": "instructblip",
    "idefics": "idefics",
    "idefics2": "idefics3",
    "idefics3": "idefics3",
    "smolvlm": "idefics3",
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_vl",
    "mplug-owl": "mplug_owl",
    "mplug_owl": "mplug_owl",
    "vit": "vit",
    "clip": "clip",
}


def detect_family(spec: ModelSpec) -> str:
    """The adapter family of a model: the spec's own, else from ``config.json``'s model_type."""
    if spec.family:
        if spec.family not in FAMILIES:
            raise ModelError(f"unknown family {spec.family!r}; known: {', '.join(FAMILIES)}")
        return spec.family
    model_type = read_config(spec).get("model_type", "")
    return MODEL_TYPES.get(model_type, "generic")



def resolve(name: str | ModelSpec) -> ModelSpec:
    """Turn a registry name, hub id or local folder into a :class:`ModelSpec`.

    ``"random:<name>"`` gives the random-init twin (seed 0; ``"random:<name>@<seed>"`` for another).
    A registered local folder that does not exist, or an unknown name that is neither a folder nor
    a hub-style ``owner/name`` id, raises :class:`ModelError` with the known names.
    """
    if isinstance(name, ModelSpec):
        return name
    for prefix, family in CONTROL_PREFIXES.items():
        if name.startswith(prefix):
            return _control_spec(name[len(prefix) :], prefix, family)
    if name.startswith(VISION_PREFIX):
        base = resolve(name[len(VISION_PREFIX) :])
        return replace(base, family="vision_tower", role="vision")
    random_init, seed = False, 0
    if name.startswith(RANDOM_PREFIX):
        random_init = True
        name = name[len(RANDOM_PREFIX) :]
        if "@" in name:
            name, seed_text = name.rsplit("@", 1)
            seed = int(seed_text)
        if name.startswith(VISION_PREFIX):
            return replace(resolve(name), random_init=True, seed=seed)
        for prefix in CONTROL_PREFIXES:
            if name.startswith(prefix):
                raise ModelError(
                    f"write the random twin's control as {prefix}{RANDOM_PREFIX}"
                    f"{name[len(prefix) :]}, not {RANDOM_PREFIX}{name}"
                )
    entries = available()
    if name in entries:
        entry = entries[name]
        spec = ModelSpec(
            name=name,
            source=entry["source"],
            revision=entry.get("revision"),
            family=entry.get("family"),
            trust_remote_code=bool(entry.get("trust_remote_code", False)),
            role=entry.get("role", "vlm"),
        )
    elif Path(name).expanduser().exists() or name.startswith(("/", ".", "~")):
        spec = ModelSpec(name=name, source=str(Path(name).expanduser().resolve()))
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        spec = ModelSpec(name=name, source=name)
    else:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(sorted(entries))}")
    if spec.is_local and not (Path(spec.source) / "config.json").is_file():
        raise ModelError(_missing_folder_message(spec))
    return replace(spec, random_init=random_init, seed=seed)


def _control_spec(source_name: str, prefix: str, family: str) -> ModelSpec:
    """The spec of ``<prefix><source_name>`` (a control computed from a VLM's answers)."""
    source = resolve(source_name)
    generative = source.family not in (*CONTROL_FAMILIES, "vision_tower") and source.role == "vlm"
    if generative:
        try:  # a folder or hub id is a "vlm" until its config says otherwise (ViT, CLIP)
            generative = detect_family(source) not in ENCODER_FAMILIES
        except ModelError:  # config not available offline: loading will say so
            pass
    if not generative:
        raise ModelError(
            f"{prefix}{source_name}: a {prefix.rstrip(':')} control needs a model that generates "
            f"answers (an MLLM or its random twin), not {source.display_name()!r}"
        )
    return replace(source, family=family)


def control_source(spec: ModelSpec) -> ModelSpec | None:
    """The model whose stored answers a control spec reads (``text:<m>``, ``length:<m>``:
    the spec of ``<m>``, random twin and seed included), or None for any other spec."""
    if spec.family not in CONTROL_FAMILIES:
        return None
    return replace(resolve(spec.name), random_init=spec.random_init, seed=spec.seed)


def _missing_folder_message(spec: ModelSpec) -> str:
    if spec.name == DEFAULT_MODEL:
        return (
            f"the demo model is not installed: {spec.source} does not exist or has no config.json. "
            "Train it with `python -m core demo train-model` (it saves a LLaVA-format checkpoint "
            "there), or pick another model."
        )
    return f"model folder for {spec.name!r} is missing or not a model folder: {spec.source}"


def read_config(spec: ModelSpec) -> dict:
    """The model's ``config.json`` as a dict (local folder, or the offline hub cache).

    Raises
    ------
    ModelError
        When the config is not available offline.
    """
    if spec.is_local:
        path = Path(spec.source) / "config.json"
        if not path.is_file():
            raise ModelError(_missing_folder_message(spec))
        return json.loads(path.read_text())
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec.source, "config.json", revision=spec.revision)
    except Exception as exc:  # offline miss, unknown repo, gated repo
        raise ModelError(
            f"model {spec.source!r} is not available offline (not in the Hugging Face cache). "
            f"Download it where there is network (`hf download {spec.source}`) and copy the "
            "cache, or save it to a folder and register it with a short name."
        ) from exc
    return json.loads(Path(path).read_text())


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprint_memo_path() -> Path:
    return home() / "fingerprints.json"


def file_digests(paths: list[Path]) -> list[str]:
    """SHA-256 of each file's whole content, memoised on disk by (path, size, mtime, inode).

    The memo ``<home>/fingerprints.json`` is shared by every process and written under a lock;
    a file whose size, modification time or inode changed is hashed again. Hashing runs at
    about 1 GB/s, so a 7B checkpoint costs ~15 s once.
    """
    from core.storage import file_lock

    memo_path = _fingerprint_memo_path()
    try:
        memo = dict(read_json(memo_path)) if memo_path.exists() else {}
    except (ArtifactError, TypeError, ValueError):
        memo = {}
    out, fresh = [], {}
    for path in paths:
        st = path.stat()
        stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        digest = memo.get(stamp)
        if digest is None:
            digest = fresh[stamp] = _file_digest(path)
        out.append(digest)
    if fresh:
        with file_lock(memo_path.with_suffix(".lock"), what="model fingerprint memo"):
            try:
                current = dict(read_json(memo_path)) if memo_path.exists() else {}
            except (ArtifactError, TypeError, ValueError):
                current = {}
            write_json(memo_path, {**current, **fresh})
    return out


def local_fingerprint(spec: ModelSpec) -> str:
    """A content fingerprint of a local model folder: the SHA-256 of every file's whole content
    (weights, config, generation config, processor, tokenizer; subfolders included, hidden files
    excluded), so any retraining, even one that keeps file sizes, gives a new identity."""
    folder = Path(spec.source)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    stamp = (
        str(folder),
        tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) for p in files),
    )
    if stamp in _FINGERPRINTS:
        return _FINGERPRINTS[stamp]
    h = hashlib.sha256()
    for path, digest in zip(files, file_digests(files), strict=True):
        h.update(str(path.relative_to(folder)).encode())
        h.update(digest.encode())
    _FINGERPRINTS[stamp] = h.hexdigest()[:24]
    return _FINGERPRINTS[stamp]


def hub_commit(spec: ModelSpec) -> str | None:
    """The commit of a hub model in the local Hugging Face cache: ``spec.revision`` when it is
    a commit hash, else what the cached ref (``main`` or the named revision) points at; None
    when the model is not cached (nothing can run then anyway)."""
    rev = spec.revision
    if rev is not None and re.fullmatch(r"[0-9a-f]{40}", rev):
        return rev
    try:
        from huggingface_hub import constants

        cache = Path(constants.HF_HUB_CACHE)
    except Exception:
        return None
    ref = cache / f"models--{spec.source.replace('/', '--')}" / "refs" / (rev or "main")
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


_FINGERPRINTS: dict[tuple, str] = {}


def describe(spec: ModelSpec) -> dict:
    """A JSON-able description of a spec (for manifests)."""
    return {**asdict(spec), "display_name": spec.display_name(), "identity": spec.identity()}
