"""The printed table (and the bench/README.md table) from the results dict."""

from __future__ import annotations


def _f(x, unit: str = "", nd: int = 1) -> str:
    if x is None:
        return "–"
    return f"{x:,.{nd}f}{unit}"


def _check(ok) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def rows(r: dict) -> list[tuple[str, str, str, str, str]]:
    """(what, measured, floor / baseline, ratio, target) rows."""
    out = []
    a = r.get("answer")
    if a:
        out.append((f"answer latency in-process p50 (p95), {a.get('backend', 'torch')}",
                    f"{_f(a['ask']['p50'], ' ms', 2)} ({_f(a['ask']['p95'], ' ms', 1)})",
                    f"{_f(a['floor']['p50'], ' ms', 2)} ({_f(a['floor']['p95'], ' ms', 1)}) encode + search",
                    f"{a['ratio_p50']:.2f}x", f"<= 1.15x {_check(a['ratio_p50'] <= 1.15)}"))
        if a.get("cpu_ratio_p50"):
            out.append(("... its CPU time (this thread's), p50", _f(a["cpu_ms_p50"], " ms", 2),
                        f"{_f(a['floor_cpu_ms_p50'], ' ms', 2)} encode + search", f"{a['cpu_ratio_p50']:.2f}x", "(info)"))
        if a.get("torch_encode"):
            out.append(("answer latency p50 vs torch's encode of the question", _f(a["ask"]["p50"], " ms", 2),
                        f"{_f(a['torch_encode']['p50'], ' ms', 2)} (sentence-transformers encode)",
                        f"{a['ratio_to_torch_p50']:.2f}x", f"<= 0.5x {_check(a['ratio_to_torch_p50'] <= 0.5)}"))
        if a.get("followup_ratio_p50"):
            out.append(("follow-up answer p50", _f(a["followup"]["p50"], " ms", 2), _f(a["followup_floor"]["p50"], " ms", 2),
                        f"{a['followup_ratio_p50']:.2f}x", "(info)"))
    c = r.get("concurrency")
    if c:
        for k, v in c.items():
            out.append((f"in-process, {k} thread(s) asking", f"{_f(v['answers_per_s'], '/s')} (p50 {_f(v['latency']['p50'], ' ms')})",
                        f"mean batch {v['mean_batch']}", f"{v['speedup']:.2f}x", "(info)"))
    h = r.get("http")
    if h:
        levels = h["levels"]
        one = levels.get("1")
        for k, v in levels.items():
            lat = v["latency"]
            target = ""
            if k == "50":
                target = f">= 5x, 0 errors {_check(v['speedup'] >= 5 and v['errors'] == 0)}"
            out.append((f"HTTP /ask, {k} client(s): p50/p95/p99", f"{_f(lat['p50'], '')}/{_f(lat['p95'], '')}/{_f(lat['p99'], ' ms')}",
                        f"{_f(v['answers_per_s'], ' answers/s')}, {v['errors']} errors",
                        f"{v['speedup']:.2f}x" if one else "", target))
    cs = r.get("cold_start")
    if cs:
        out.append(("cold start: `qa ask` to first answer (median)", _f(cs["qa_ask_s"], " s", 2),
                    f"{_f(cs['floor_s'], ' s', 2)} (import st + load + encode)", f"{cs['ratio']:.2f}x", "(info)"))
        out.append(("cold start: `qa ask` wall, start to exit (median)", _f(cs["qa_ask_exit_s"], " s", 2),
                    f"{_f(cs['floor_exit_s'], ' s', 2)} (floor, to exit)", "",
                    f"<= 1.5 s {_check(cs['qa_ask_exit_s'] <= 1.5)}"))
        if cs.get("qa_ask_torch_s"):
            out.append(("cold start: `qa ask` vs QA_ENCODER=torch", _f(cs["qa_ask_s"], " s", 2),
                        _f(cs["qa_ask_torch_s"], " s", 2), f"{cs['ratio_to_torch_ask']:.2f}x", "(info)"))
    sv = r.get("serve")
    if sv:
        out.append(("`qa serve` launch to first answered /ask (median)", _f(sv["serve_first_answer_s"], " s", 2),
                    f"{_f(sv['import_gradio_s'], ' s', 2)} (a process importing gradio)", f"{sv['ratio']:.2f}x",
                    f"<= 3 s {_check(sv['serve_first_answer_s'] <= 3)}"))
    im = r.get("imports")
    if im:
        for k, v in im.items():
            heavy = ", ".join(v["heavy_modules"]) or "none"
            ok = "torch" not in v["heavy_modules"]
            out.append((f"`{k}`: time, heavy modules loaded", f"{_f(v['seconds'] * 1000, ' ms', 0)}", heavy, "",
                        f"no torch {_check(ok)}" if k != "import qa.engine" else "(info)"))
    b = r.get("build")
    if b:
        out.append(("build throughput (texts/s; chunks/s)", f"{_f(b['build_texts_per_s'])}; {_f(b['build_chunks_per_s'])}",
                    f"raw encode {_f(b['raw_texts_per_s'])}; {_f(b['raw_chunks_per_s'])}", f"{b['ratio']:.2f}x",
                    f">= 0.9x {_check(b['ratio'] >= 0.9)}"))
    s = r.get("scale")
    if s:
        threshold = r.get("meta", {}).get("ann_threshold", 200_000)
        for ds, d in s.get("datasets", {}).items():
            for n, v in d["sizes"].items():
                h_, least = v.get("hnsw_as_built"), v.get("hnsw_least_ef")
                if h_:
                    hn = f"HNSW ef={h_['ef_search']}: {_f(h_['p50_ms'], ' ms', 3)}, recall@10 {h_['recall']:.3f}"
                    hn += f" (0.95 from ef={least['ef_search']})" if least else " (0.95 not reached)"
                else:
                    hn = "HNSW " + v.get("hnsw_note", "–")
                used = int(n) > threshold and ds == "embedding-like"
                out.append((f"search 1 query, {ds}, {int(n):,} vectors",
                            f"flat {_f(v['flat_p50_ms'], ' ms', 3)}; numpy {_f(v['numpy_p50_ms'], ' ms', 3)}", hn,
                            f"{v['numpy_p50_ms'] / h_['p50_ms']:.2g}x vs numpy" if h_ else "",
                            (f"recall >= 0.95 {_check(h_['recall'] >= 0.95)}" if used else "(HNSW not used here)")
                            if h_ else ""))
            g = d.get("growth")
            if g:
                out.append((f"growth {ds}, x{g['size_ratio']} vectors", f"flat x{g['flat']}; numpy x{g['numpy']}",
                            f"HNSW x{g['hnsw']}" if g.get("hnsw") else "", "", "(info)"))
    bk = r.get("book")
    if bk:
        b1, b2 = bk["build"], bk["rebuild_after_one_edit"]
        out.append((f"book {bk['bytes'] / 1e6:.1f} MB ({bk['words']:,} words), `qa build`, {bk['encoder']}",
                    f"{_f(b1['wall_s'], ' s')}, peak {_f(b1['peak_mb'], ' MB', 0)}, index {_f(b1['index_mb'], ' MB')}",
                    f"{b1['encoded']} texts encoded; serving it adds {_f(b1.get('load_mb'), ' MB', 0)}", "",
                    (f"<= 120 s {_check(b1['wall_s'] <= 120)}, <= 1 GB {_check((b1['peak_mb'] or 0) <= 1024)}, "
                     f"<= 25 MB {_check(b1['index_mb'] <= 25)}")))
        out.append(("book: rebuild after editing one paragraph", f"{_f(b2['wall_s'], ' s')}",
                    f"{b2['encoded']} encoded, {b2['reused']} reused", "", "(info)"))
    m = r.get("memory")
    if m:
        others = (f"qa ask {_f(m.get('qa_ask_mb'), ' MB', 0)}; app {_f(m.get('app_mb'), ' MB', 0)}; "
                  f"floor {_f(m.get('floor_mb'), ' MB', 0)}")
        out.append(("peak memory (VmHWM / maxrss)", f"bench process {_f(m.get('bench_mb'), ' MB', 0)}", others, "",
                    "(info)"))
    return out


def table(r: dict, markdown: bool = False) -> str:
    head = ("what", "measured", "floor / beside it", "ratio", "target")
    body = rows(r)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in body])
