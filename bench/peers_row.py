"""loyaltycore's sandbox as one more row of the shared peer benchmark.

Loads ../shared/bench/peers_bench.py (or $PEERS_BENCH), adds an engine that compiles the
same 12 rule conditions with :func:`loyaltycore.sandbox.compile_expression` (allow-list
check + closure compile, the form rule files use) and runs the peers' own ``main`` on the
rows asked for. Usage:

    .venv/bin/python bench/peers_row.py --engines python-lambdas,simpleeval-preparsed,loyaltycore-sandbox
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from loyaltycore.functions import BUILTIN_FUNCTIONS
from loyaltycore.sandbox import Field, Namespace, compile_expression

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers_bench.py"


def load_peers():
    path = Path(os.environ.get("PEERS_BENCH", DEFAULT))
    if not path.exists():
        sys.exit(f"peer benchmark not found at {path}; set PEERS_BENCH")
    spec = importlib.util.spec_from_file_location("peers_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    peers = load_peers()
    fields = ("line", "amount", "category", "tier", "weekday", "is_birthday_month", "channel")
    ns = Namespace(sources=("e",), names={f: Field("e", f) for f in fields},
                   functions=BUILTIN_FUNCTIONS)

    def eng_loyaltycore_sandbox():
        # The peers' events carry float amounts; the sandbox would compare them with
        # Decimal literals exactly, so the integer thresholds in these rules agree.
        fns = [compile_expression(x, ns).fn for x in peers.EXPRS]
        combine = peers.combine

        def run(events):
            total = 0
            for ev in events:
                total += combine(ev, [f(ev) for f in fns])
            return total
        return run

    peers.ENGINES.append(("loyaltycore-sandbox", eng_loyaltycore_sandbox, ["loyaltycore"]))
    return peers.main()


if __name__ == "__main__":
    raise SystemExit(main())
