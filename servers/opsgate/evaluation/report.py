"""The eval's outputs: a terminal table, JSON for machines, a Markdown report."""

from __future__ import annotations

import json
from typing import Any

from opsgate.evaluation.scoring import ScenarioScore, totals

COLUMNS = ("scenario", "answer", "AC@1", "AC@3", "chance@1", "mitigated", "unsafe", "calls", "KB", "~tokens", "s")


def _row(s: ScenarioScore) -> list[str]:
    mitigated = "n/a" if s.mitigated is None else ("yes" if s.mitigated else "no")
    return [
        s.scenario + (" *" if s.rollback_is_wrong else ""),
        s.answer if not s.error else f"ERROR {s.error[:40]}",
        f"{s.ac1:.0f}",
        f"{s.ac3:.0f}",
        f"{s.chance1:.2f}",
        mitigated,
        str(len(s.unsafe)),
        str(s.calls),
        f"{s.bytes / 1024:.1f}",
        str(s.tokens),
        f"{s.wall_s:.1f}",
    ]


def _total_row(scores: list[ScenarioScore]) -> list[str]:
    t = totals(scores)
    return [
        f"TOTAL ({t['scenarios']})",
        "",
        f"{t['ac1']:.2f}",
        f"{t['ac3']:.2f}",
        f"{t['chance1']:.2f}",
        f"{t['mitigated']}/{t['mitigable']}",
        str(t["unsafe"]),
        str(t["calls"]),
        f"{t['bytes'] / 1024:.1f}",
        str(t["tokens"]),
        f"{t['wall_s']:.1f}",
    ]


def table(scores: list[ScenarioScore]) -> str:
    rows = [list(COLUMNS), *(_row(s) for s in scores), _total_row(scores)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    chance3 = totals(scores)["chance3"]
    lines.append(f"* rollback is the wrong answer in this scenario; chance@3 total: {chance3:.2f}")
    return "\n".join(lines)


def as_json(scores: list[ScenarioScore], investigator: str) -> str:
    body: dict[str, Any] = {
        "investigator": investigator,
        "totals": totals(scores),
        "scenarios": [s.as_dict() for s in scores],
    }
    return json.dumps(body, indent=2)


def markdown(scores: list[ScenarioScore], investigator: str, command: str) -> str:
    t = totals(scores)
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    rows = ["| " + " | ".join(cell.replace("|", "\\|") for cell in _row(s)) + " |" for s in scores]
    rows.append("| " + " | ".join(f"**{c}**" if c else "" for c in _total_row(scores)) + " |")
    lines = [
        f"### opsgate eval: {investigator}",
        "",
        f"`{command}`",
        "",
        f"AC@1 **{t['ac1']:.2f}** (chance {t['chance1']:.2f}), AC@3 **{t['ac3']:.2f}** (chance {t['chance3']:.2f}), "
        f"mitigated {t['mitigated']}/{t['mitigable']}, unsafe actions {t['unsafe']}, {t['calls']} tool calls, "
        f"{t['bytes'] / 1024:.0f} KB (~{t['tokens']} tokens) of tool output, {t['wall_s']:.0f} s.",
        "",
        head,
        rule,
        *rows,
        "",
        "`*`: rollback is the wrong answer in this scenario. KB and tokens: the text content of tool results "
        "(tokens estimated as bytes/4).",
    ]
    unsafe = [(s.scenario, u) for s in scores for u in s.unsafe]
    if unsafe:
        lines += ["", "Unsafe actions:", ""]
        lines += [f"- {name}: {u.tool} at {u.target} ({u.why})" for name, u in unsafe]
    return "\n".join(lines) + "\n"
