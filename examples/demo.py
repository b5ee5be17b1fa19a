"""The vault-core demo behind `make demo` (until the full quickstart lands).

Every step prints the command a user would type and then runs exactly that
command, so the output doubles as a tutorial.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LENSVAULT = [sys.executable, "-m", "lensvault.cli.main"]


def sh(*args: str, cwd: Path, ok=(0,)) -> None:
    shown = "lensvault " + " ".join(shlex.quote(a) for a in args)
    print(f"\n$ {shown}", flush=True)
    r = subprocess.run([*LENSVAULT, *args], cwd=cwd)
    if r.returncode not in ok:
        sys.exit(f"demo step failed ({r.returncode}): {shown}")


def make_images(folder: Path, n: int, seed: int) -> None:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for i in range(n):
        split = "train" if i % 10 < 7 else ("val" if i % 10 < 9 else "test")
        img = Image.new("RGB", (160, 120), tuple(rng.randrange(40, 220) for _ in range(3)))
        d = ImageDraw.Draw(img)
        for _ in range(rng.randint(1, 3)):
            x, y = rng.randrange(0, 120), rng.randrange(0, 80)
            d.rectangle([x, y, x + rng.randrange(10, 40), y + rng.randrange(10, 40)], fill=tuple(rng.randrange(256) for _ in range(3)))
        p = folder / "images" / split / f"img_{seed}_{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p, optimize=False)


def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="lensvault-demo-"))
    if base.exists() and any(base.iterdir()):
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LENSVAULT_USER", "demo")
    print(f"LensVault demo in {base}")
    raw = base / "data" / "raw"
    make_images(raw, 60, seed=1)
    (raw / "README.txt").write_text("Synthetic retail shelf images.\n")

    sh("init", cwd=base)
    sh("dataset", "snapshot", "retail", "data/raw", "--version", "1.0.0", "--notes", "initial snapshot", cwd=base)
    print("\n# add 20 images, drop one, edit the README — then snapshot again")
    make_images(raw, 20, seed=2)
    next((raw / "images" / "train").glob("img_1_*.png")).unlink()
    (raw / "README.txt").write_text("Synthetic retail shelf images, second batch added.\n")
    sh("dataset", "snapshot", "retail", "data/raw", "--version", "1.1.0", "--notes", "second batch", cwd=base)
    sh("dataset", "snapshot", "retail", "data/raw", "--version", "1.1.0", cwd=base, ok=(4,))
    print("# ^ versions are write-once: the same version is refused")
    sh("dataset", "list", cwd=base)
    sh("dataset", "log", "retail", cwd=base)
    sh("dataset", "diff", "retail@1.0.0", "retail@1.1.0", cwd=base)
    sh("dataset", "checkout", "retail@1.0.0", "work/retail-1.0.0", cwd=base)
    sh("status", "retail@1.0.0", "work/retail-1.0.0", cwd=base)
    print("\n# edit a checked-out file: status notices")
    (base / "work" / "retail-1.0.0" / "README.txt").write_text("edited\n")
    sh("status", "work/retail-1.0.0", cwd=base, ok=(1,))
    sh("verify", cwd=base)
    sh("gc", cwd=base)
    sh("events", cwd=base)
    print(f"\nDone. The vault is in {base}/.lensvault and the frozen manifests in {base}/data/manifests.")


if __name__ == "__main__":
    main()
