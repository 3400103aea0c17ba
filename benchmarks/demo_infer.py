"""Live inference latency of the demo model: one image and one instruction, greedy, on CPU.

Usage: ``python benchmarks/demo_infer.py [--threads 2] [--repeats 10]``. Prints the median and
best wall time of the whole call (processor + generate + decode) for a few instructions, with and
without hidden states. Target (issue 4): under 1 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args(argv)

    import torch

    from core.config import setup_environment

    setup_environment()
    torch.set_num_threads(args.threads)
    from core.data.demo.scenes import draw_scene
    from core.models.demo_vlm import DEMO_FOLDER, load_demo_model
    from core.models.demo_vlm.architecture import prompt
    from core.models.instructions import resolve_instruction

    t0 = time.perf_counter()
    model, processor = load_demo_model()
    load_s = time.perf_counter() - t0
    image = draw_scene(0, "heldout", 0).image  # 256 px, like the stimuli
    print(f"model {DEMO_FOLDER} loaded in {load_s:.2f} s; torch threads {args.threads}")
    print(f"{'instr':6} {'hidden':>6} {'tokens':>6} {'median s':>9} {'best s':>7}  answer")
    worst = 0.0
    for iid in ("IU1", "IU3", "VQ3", "IC"):
        text = prompt(resolve_instruction(iid).text)
        for hidden in (False, True):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                enc = processor(images=[image], text=[text], return_tensors="pt")
                with torch.inference_mode():
                    out = model.generate(
                        **enc,
                        max_new_tokens=48,
                        do_sample=False,
                        output_hidden_states=hidden,
                        return_dict_in_generate=True,
                        eos_token_id=processor.tokenizer.eos_token_id,
                        pad_token_id=processor.tokenizer.pad_token_id,
                    )
                new = out.sequences[0, enc["input_ids"].shape[1] :]
                answer = processor.tokenizer.decode(new, skip_special_tokens=True)
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            worst = max(worst, med)
            print(f"{iid:6} {str(hidden):>6} {len(new):6d} {med:9.3f} {min(times):7.3f}  {answer}")
    print(f"slowest median: {worst:.3f} s (target < 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
