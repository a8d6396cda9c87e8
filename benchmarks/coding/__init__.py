"""A coding benchmark for the supervised coding operator: SWE-bench-style instances, offline or live.

::

    .venv/bin/python -m benchmarks.coding                  # offline: scripted answers from the fake provider
    .venv/bin/python -m benchmarks.coding --live           # real models (ANTHROPIC_API_KEY / OPENAI_API_KEY)
    .venv/bin/python -m benchmarks.coding --only payments__fee-1 --json results.json

``tasks.jsonl`` holds the instances (SWE-bench's schema, see :mod:`benchmarks.coding.instances`), and
``scripted.yaml`` the offline answers. The harness is :mod:`benchmarks.coding.harness`.
"""
