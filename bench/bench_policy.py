"""One policy decision on each engine: median and p99, printed with ratios to the embedded engine.

    python bench/bench_policy.py [--n 2000] [--against OTHER_POLICY_DIR ...]

`--against` (repeatable) adds a row for the embedded VM over another policy folder (e.g. an older
revision: `git archive REV policies | tar -x -C /tmp/old`) on the same inputs in the same run, through
the same `decide` path, so the rows differ by the Rego alone. Then one decision of each kind (a read,
a dry run, an autonomous real write, an approved write, a write held for approval), each input
repeated, on every policy folder.

Rows: the embedded engine inline on the event loop (what the gate uses); the same VM behind a dedicated
worker thread (the alternative that was measured and not chosen); regorus's tree-walking interpreter;
the OPA engine over HTTP to the loopback OPA stand-in; real OPA's Go evaluator in process
(opa-golib-python-bindings, test-only).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.policy.cases import POLICY_DIR, load_cases  # noqa: E402
from tests.policy.opa_data_api_server import serve  # noqa: E402

from opsgate.policy.embedded import EmbeddedEngine, load_policy_data, new_interpreter, policy_modules  # noqa: E402
from opsgate.policy.opa import OpaServerEngine  # noqa: E402

INPUTS = [c.input for c in load_cases()]
# One decision of each kind, from the decision table.
KINDS = {
    "read": "read allowed",
    "dry run": "prod dry run",
    "autonomous real write": "autonomous real write",
    "approved write (sre grant)": "prod write with sre grant",
    "write held for approval": "prod write without approval",
}


async def measure(fn: Callable[[dict[str, Any]], Awaitable[Any]], n: int) -> list[float]:
    for doc in INPUTS:  # warm up
        await fn(doc)
    samples = []
    for i in range(n):
        doc = INPUTS[i % len(INPUTS)]
        started = time.perf_counter()
        await fn(doc)
        samples.append(time.perf_counter() - started)
    return samples


async def measure_interleaved(
    fns: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]], n: int, rounds: int = 10
) -> dict[str, list[float]]:
    """`measure` for several engines in alternating rounds, so drift on a busy machine hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name] += await measure(fn, n // rounds)
    return samples


def row(name: str, samples: list[float], baseline: float | None) -> float:
    samples = sorted(samples)
    median = statistics.median(samples) * 1e6
    p99 = samples[int(len(samples) * 0.99) - 1] * 1e6
    ratio = f"{median / baseline:6.1f}x" if baseline else "  1.0x"
    print(f"{name:<48} median {median:8.1f} us   p99 {p99:8.1f} us   {ratio}")
    return median


def one_kind(engine: EmbeddedEngine, doc: dict[str, Any], n: int) -> float:
    for _ in range(20):  # warm up
        engine.decide_sync(doc)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        engine.decide_sync(doc)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def kinds(engines: dict[str, EmbeddedEngine], n: int, rounds: int = 5) -> None:
    by_name = {c.name: c.input for c in load_cases()}
    names = list(engines)
    print(f"\none decision of each kind (median of {rounds} rounds of {n // rounds} each, us):")
    print(f"{'':<30}" + "".join(f"{name[-28:]:>30}" for name in names))
    for kind, case in KINDS.items():
        medians: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:
                medians[name].append(one_kind(engines[name], by_name[case], n // rounds))
        print(f"{kind:<30}" + "".join(f"{statistics.median(medians[name]):30.1f}" for name in names))


async def main(n: int, against: list[Path]) -> None:
    print(f"{n} decisions each, cycling over {len(INPUTS)} decision-table inputs")
    embedded = EmbeddedEngine(POLICY_DIR)
    others = {str(path): EmbeddedEngine(path, validate_data=False) for path in against}
    trees = await measure_interleaved({"": embedded.decide} | {name: e.decide for name, e in others.items()}, n)
    base = row("embedded (regorus VM), inline on the loop", trees[""], None)
    for name in others:
        row(f"embedded VM over {name}", trees[name], base)

    kinds({"policies/ (this tree)": embedded, **others}, max(500, n // 2))
    print()

    worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    # The worker builds its own VM on first use (regorus objects stay on their thread).
    loop = asyncio.get_running_loop()

    async def on_worker(doc: dict[str, Any]) -> Any:
        return await loop.run_in_executor(worker, embedded.decide_sync, doc)

    row("embedded (regorus VM), dedicated worker thread", await measure(on_worker, n), base)
    worker.shutdown()

    interpreter = new_interpreter(policy_modules(POLICY_DIR), load_policy_data(POLICY_DIR))

    async def interpret(doc: dict[str, Any]) -> Any:
        interpreter.set_input(doc)
        return interpreter.eval_rule("data.opsgate.decision")

    row("regorus tree-walking interpreter, inline", await measure(interpret, n), base)

    with serve(POLICY_DIR) as (url, _):
        opa_engine = OpaServerEngine(url, timeout_s=2.0)
        row("OPA engine over HTTP to the loopback stand-in", await measure(opa_engine.decide, max(200, n // 4)), base)
        await opa_engine.aclose()

    try:
        from tests.policy.real_opa import RealOpa
    except ImportError:
        print("real OPA (opa-golib-python-bindings) not installed: skipped")
        return
    real = RealOpa(POLICY_DIR)

    async def real_opa(doc: dict[str, Any]) -> Any:
        return real.decision(doc)

    row("real OPA (Go, in process via ctypes)", await measure(real_opa, n), base)
    real.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument(
        "--against", type=Path, action="append", default=[], help="another policy folder, same inputs (repeatable)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.n, args.against))
