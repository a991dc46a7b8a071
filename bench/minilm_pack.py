"""Pack the bundled all-MiniLM-L6-v2 folder small enough to travel to a GPU machine, and unpack it there.

Why: the device machine takes at most 64 MiB of files per call, and the float32 weights are 87 MiB.
`pack` writes the folder with its weights stored as float16 (43 MiB); `unpack` casts them back to float32
in a sentence-transformers / Hugging Face folder that both our loader and sentence-transformers read.
Every weight is then within 2^-11 (relative) of the original: both sides of a benchmark run on the same
rounded weights, and quality numbers move by far less than their run-to-run spread.

Run: python bench/minilm_pack.py pack DIR     (here, with the app's .venv)
     python bench/minilm_pack.py unpack DIR OUT_FOLDER   (there)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

WEIGHTS = "model.safetensors"
PACKED = "model.float16.safetensors"


def pack(out: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from semsim.encoders.bert import minilm_folder

    source = minilm_folder()
    out.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name == WEIGHTS or item.name.startswith("."):
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name)
    weights = load_file(str(source / WEIGHTS))
    largest = max(float(np.abs(w).max()) for w in weights.values())
    if largest > 60000:  # float16 tops out at 65504
        raise SystemExit(f"a weight of magnitude {largest} does not fit float16")
    save_file({name: w.astype(np.float16) for name, w in weights.items()}, str(out / PACKED))


def unpack(packed: Path, out: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for item in packed.iterdir():
        if item.name != PACKED:
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name, **(
                {"dirs_exist_ok": True} if item.is_dir() else {}))
    weights = load_file(str(packed / PACKED))
    save_file({name: w.astype(np.float32) for name, w in weights.items()}, str(out / WEIGHTS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("folder", type=Path, help="the packed folder")
    parser.add_argument("out", type=Path, nargs="?", help="unpack: the float32 folder to write")
    args = parser.parse_args()
    if args.action == "pack":
        pack(args.folder)
    elif args.out is None:
        parser.error("unpack needs OUT_FOLDER")
    else:
        unpack(args.folder, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
