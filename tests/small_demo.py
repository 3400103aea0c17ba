"""The small demo world (seed 0), built once per test process and copied where a test needs it.

A build is byte-identical for a seed (``tests/data/test_demo_world.py`` checks it), so a copy is
the world a fresh build would give, in a fraction of the time: the tests that fill a fresh home
(provenance, Ray, the first view) copy it instead of building it again.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_BUILT: Path | None = None


def install_small_demo(root: Path) -> Path:
    """Put the small demo world (seed 0) at ``root`` (replacing what is there); returns ``root``."""
    global _BUILT
    from core.data.demo.build import build_demo

    if _BUILT is None:
        _BUILT = Path(tempfile.mkdtemp(prefix="brainprompt-small-demo-")) / "demo"
        atexit.register(shutil.rmtree, _BUILT.parent, True)
        build_demo(root=_BUILT, size="small", seed=0, progress=False)
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_BUILT, root)
    return root
