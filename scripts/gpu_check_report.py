"""The GPU check's one table and one JSON file, from what ``scripts/gpu_check.sh`` left in its folder.

Reads ``stages.tsv`` (stage, exit status, seconds), ``versions.json``, the main job's score and
the benchmarks' JSON; writes ``gpu_check.json`` and prints a Markdown table for
docs/PERFORMANCE.md. Exits 1 when any stage failed (or none ran).

    python scripts/gpu_check_report.py gpu-check
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def collect(folder: Path) -> dict:
    stages = []
    for line in (folder / "stages.tsv").read_text(encoding="utf-8").splitlines():
        name, status, seconds = line.split("\t")
        stages.append({"stage": name, "exit": int(status), "seconds": int(seconds)})
    score = _json(folder / "main" / "llava-tiny-okvqa-qlora" / "eval" / "okvqa_val_score.json")
    return {
        "versions": _json(folder / "versions.json"),
        "stages": stages,
        "main_job_vqa_accuracy": score.get("vqa_accuracy") if score else None,
        "recipe": _json(folder / "bench_recipe.json"),
        "plain": _json(folder / "bench_plain.json"),
        "answering": _json(folder / "bench_answer.json"),
        "answering_static": _json(folder / "bench_answer_static.json"),
    }


def _train_row(name: str, result: dict | None) -> str:
    if not result:
        return f"| {name} | - | - | - | - | - | - |"
    mfu = f"{result['mfu']:.2f}" if result.get("mfu") is not None else "-"
    memory = f"{result['peak_memory_gib']:.1f}" if result.get("peak_memory_gib") is not None else "-"
    checkpointing = {True: "on", False: "off"}.get(result.get("gradient_checkpointing"), "-")
    return (
        f"| {name} | {checkpointing} | {result['median_step_s']:.3f} s | {result['samples_per_s']:.2f} | "
        f"{result['tokens_per_s']:,.0f} | {memory} GiB | {mfu} |"
    )


def _phase_rows(report: dict) -> list[str]:
    """The per-phase split (ms) of each training benchmark that has one."""
    runs = [(name, (report[key] or {}).get("phases_ms")) for name, key in (("recipe", "recipe"), ("plain", "plain"))]
    runs = [(name, phases) for name, phases in runs if phases]
    if not runs:
        return []
    names = list(runs[0][1])
    lines = ["", "| phase (ms) | " + " | ".join(name for name, _ in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    lines += [
        f"| {phase} | " + " | ".join(f"{phases.get(phase, 0):.1f}" for _, phases in runs) + " |" for phase in names
    ]
    return lines


def table(report: dict) -> str:
    device = (report["versions"] or {}).get("device", "unknown device")
    lines = [f"GPU check on {device}", "", "| stage | exit | seconds |", "|---|---|---|"]
    lines += [f"| {s['stage']} | {s['exit']} | {s['seconds']} |" for s in report["stages"]]
    accuracy = report["main_job_vqa_accuracy"]
    lines += ["", f"Main job (tiny model, synthetic OK-VQA): VQA accuracy {accuracy if accuracy is not None else '-'}"]
    lines += [
        "",
        "| run (7B shapes, QLoRA r 128, batch 16) | checkpointing | median step | samples/s | tokens/s "
        "| peak memory | MFU |",
    ]
    lines += ["|---|---|---|---|---|---|---|"]
    lines.append(_train_row("recipe (DeepSpeed ZeRO-2)", report["recipe"]))
    lines.append(_train_row("plain Trainer", report["plain"]))
    for key, cache in (("answering", "dynamic"), ("answering_static", "static")):
        for row in (report.get(key) or {}).get("rows", []):
            lines.append(
                f"| answering, batch {row['batch_size']}, {cache} KV cache | | | "
                f"{row['questions_per_s']:.1f} questions/s | | | |"
            )
    return "\n".join(lines + _phase_rows(report))


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:])[0])
    report = collect(folder)
    tmp = folder / "gpu_check.json.tmp"
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    tmp.replace(folder / "gpu_check.json")
    print(table(report))
    failed = [s["stage"] for s in report["stages"] if s["exit"] != 0]
    if failed or not report["stages"]:
        print(f"failed: {', '.join(failed) or 'no stage ran'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
