"""Benchmarks for issue 6 ("Fast where it matters"): `python -m bench` (see bench/README.md).

Every figure is printed next to a *floor* measured in the same run on the same machine: the
least work any implementation must do (the model's encode plus the index search, the import
and model load, the model's raw encode throughput, exact search). On a shared, noisy 2-core
machine absolute times drift from run to run; the ratios to those floors are what the
targets and `tests/test_bench.py` check.

Modules: `corpus` (the index and question pool every section uses), `inproc` (answer latency,
batching, build throughput, imports), `coldstart` (subprocess to first answer), `http` (the
Gradio app under 1/10/50 concurrent `gradio_client` clients), `scale` (flat vs HNSW at
10^4..10^6 vectors), `report` (table + JSON).
"""
