"""``python -m core``: the BrainPrompt command line."""

from core.pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
