"""One policy decision on each engine: median and p99, printed with ratios to the embedded engine.

    python bench/bench_policy.py [--n 2000] [--against OTHER_POLICY_DIR]

`--against` adds a row for the embedded VM over another policy folder (e.g. an older revision:
`git archive REV policies | tar -x -C /tmp/old`) on the same inputs in the same run.

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


def row(name: str, samples: list[float], baseline: float | None) -> float:
    samples = sorted(samples)
    median = statistics.median(samples) * 1e6
    p99 = samples[int(len(samples) * 0.99) - 1] * 1e6
    ratio = f"{median / baseline:6.1f}x" if baseline else "  1.0x"
    print(f"{name:<48} median {median:8.1f} us   p99 {p99:8.1f} us   {ratio}")
    return median


async def main(n: int, against: Path | None) -> None:
    print(f"{n} decisions each, cycling over {len(INPUTS)} decision-table inputs")
    embedded = EmbeddedEngine(POLICY_DIR)
    base = row("embedded (regorus VM), inline on the loop", await measure(embedded.decide, n), None)
    if against is not None:
        other = EmbeddedEngine(against, validate_data=False)

        async def other_decide(doc: dict[str, Any]) -> Any:
            return other.evaluate(doc)

        row(f"embedded VM over {against}", await measure(other_decide, n), base)

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
    parser.add_argument("--against", type=Path, default=None, help="another policy folder, same inputs")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.against))
