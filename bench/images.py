"""Image variants benchmark: the CPU of a variant set against plain libvips doing the same.

    .venv/bin/python bench/images.py [--megapixels 24] [--pairs 3] [--work-dir DIR]

Builds one JPEG of about `--megapixels` MP (6000×4000 at 24 MP, a smooth scene plus film-like
grain, quality 90, so it decodes like a photo) and, A/B interleaved (A/B then B/A), measures
the process CPU time (user + system, every libvips thread included) of:

  mediakeep  processing.image.make_variants with the default MEDIA_VARIANTS presets
             (header + pixel guard, then one shrink-on-load `thumbnail` per preset, sRGB
             conversion, metadata-free WebP saves)
  pyvips     the same presets as bare pyvips calls: `Image.thumbnail(path, w, height=h,
             crop=..., size="down")` and `webpsave(Q=80, effort=4, keep="none")` each

The goal (DESIGN.md, docs/benchmarks.md) is mediakeep ≤ 1.2× pyvips: the variant pipeline
adds no decode and no pass over the pixels that the bare calls do not make. Results go to
bench/results/images_variants.json. (Signed transforms against thumbor: bench/transforms.py.)
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")

import pyvips  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import _common as common  # noqa: E402

from mediakeep.processing import image  # noqa: E402
from mediakeep.processing.presets import (  # noqa: E402
    DEFAULT_VARIANTS,
    VariantSpec,
    parse_variant_specs,
    variant_box,
)

RESULTS = ROOT / "bench" / "results" / "images_variants.json"
GOAL_RATIO = 1.2


def make_source(path: Path, megapixels: float) -> tuple[int, int]:
    height = int((megapixels * 1e6 / 1.5) ** 0.5)
    width = int(height * 1.5)
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    base = (x * (255.0 / width)).bandjoin([y * (255.0 / height), (x + y) * (127.0 / height)])
    grain = pyvips.Image.gaussnoise(width, height, sigma=12).bandjoin(
        [pyvips.Image.gaussnoise(width, height, sigma=12)] * 2
    )
    picture = (base + grain).cast("uchar").copy(interpretation="srgb")
    picture = picture.draw_circle([240, 230, 40], width // 3, height // 2, height // 5, fill=True)
    picture.jpegsave(str(path), Q=90)
    return width, height


def cpu_of(work: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds of the whole process, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def run_mediakeep(source: Path, specs: tuple[VariantSpec, ...], out: Path) -> int:
    made = image.make_variants(source, specs, lambda spec: out / f"mk-{spec.name}")
    return len(made)


def run_pyvips(
    source: Path, specs: tuple[VariantSpec, ...], size: tuple[int, int], out: Path
) -> int:
    count = 0
    for spec in specs:
        box = variant_box(spec, *size)
        if box is None:
            continue
        width, height, crop = box
        options: dict[str, Any] = {"height": height, "size": "down"}
        if crop:
            options["crop"] = "centre"
        thumb = pyvips.Image.thumbnail(str(source), width, **options)
        thumb.webpsave(str(out / f"pv-{spec.name}"), Q=80, effort=4, keep="none")
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.pairs < 3:
        parser.error("at least 3 pairs: this machine's speed drifts")

    specs = parse_variant_specs(DEFAULT_VARIANTS)
    with tempfile.TemporaryDirectory(prefix="mediakeep-bench-images-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        source = work / "source.jpg"
        size = make_source(source, args.megapixels)
        print(
            f"-- source: {size[0]}x{size[1]} JPEG ({source.stat().st_size / 1e6:.1f} MB); "
            f"presets: {', '.join(spec.name for spec in specs)}",
            flush=True,
        )
        # One untimed round each: page cache, libvips' first-use set-up.
        run_mediakeep(source, specs, work)
        run_pyvips(source, specs, size, work)

        rows: list[dict[str, Any]] = []
        for pair in range(args.pairs):
            order = ["mediakeep", "pyvips"] if pair % 2 == 0 else ["pyvips", "mediakeep"]
            seen: dict[str, tuple[float, float]] = {}
            for name in order:
                if name == "mediakeep":
                    seen[name] = cpu_of(lambda: run_mediakeep(source, specs, work))
                else:
                    seen[name] = cpu_of(lambda: run_pyvips(source, specs, size, work))
            row = {
                "pair": pair + 1,
                "order": "/".join(order),
                "mediakeep_cpu_s": seen["mediakeep"][0],
                "mediakeep_wall_s": seen["mediakeep"][1],
                "pyvips_cpu_s": seen["pyvips"][0],
                "pyvips_wall_s": seen["pyvips"][1],
                "ratio": seen["mediakeep"][0] / seen["pyvips"][0],
            }
            rows.append(row)
            print(
                f"   pair {pair + 1}/{args.pairs} ({row['order']}): "
                f"mediakeep {row['mediakeep_cpu_s']:.2f} s CPU, "
                f"pyvips {row['pyvips_cpu_s']:.2f} s CPU, ratio {row['ratio']:.3f}",
                flush=True,
            )
        variants = run_mediakeep(source, specs, work)

    ratio = statistics.median(row["ratio"] for row in rows)
    summary = {
        "variants": variants,
        "mediakeep_cpu_s": statistics.median(row["mediakeep_cpu_s"] for row in rows),
        "pyvips_cpu_s": statistics.median(row["pyvips_cpu_s"] for row in rows),
        "mediakeep_wall_s": statistics.median(row["mediakeep_wall_s"] for row in rows),
        "pyvips_wall_s": statistics.median(row["pyvips_wall_s"] for row in rows),
        "ratio_median": ratio,
        "ratio_max": max(row["ratio"] for row in rows),
        "goal_met": ratio <= GOAL_RATIO,
    }
    header = (
        f"{'source':>11} | {'variants':>8} | {'mediakeep CPU':>13} | {'pyvips CPU':>10} | "
        f"{'ratio (median)':>14} | {'ratio (max)':>11} | goal ≤ {GOAL_RATIO}"
    )
    print()
    print(header)
    print("-" * len(header))
    print(
        f"{size[0]}x{size[1]:<6} | {variants:>8} | {summary['mediakeep_cpu_s']:>11.2f} s | "
        f"{summary['pyvips_cpu_s']:>8.2f} s | {ratio:>14.3f} | {summary['ratio_max']:>11.3f} | "
        f"{'met' if summary['goal_met'] else 'NOT met'}"
    )
    document = common.document(
        "images_variants",
        goal={"ratio_max": GOAL_RATIO},
        machine=common.machine(args.work_dir) | {"vips_concurrency": pyvips.concurrency_get()},
        source={"width": size[0], "height": size[1], "format": "jpeg", "quality": 90},
        presets=DEFAULT_VARIANTS,
        pairs=rows,
        summary=summary,
    )
    print()
    common.write_json(args.output, document)
    common.emit_result(
        "images",
        [common.goal("variant set CPU / bare pyvips", ratio, "<=", GOAL_RATIO, "x")],
        figures={"ratio_max": round(summary["ratio_max"], 3)},
        megapixels=args.megapixels,
        pairs=args.pairs,
    )


if __name__ == "__main__":
    main()
