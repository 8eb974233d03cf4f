"""Layering: `ochuman` (and `ochuman stats`) never load torch; no import circle anywhere; the drop-in starts light."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "ochuman/data/ochuman-sample/annotations/ochuman.json"


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_import_ochuman_never_loads_torch():
    _run(
        "import sys, ochuman, ochuman.io, ochuman.convert, ochuman.stats, ochuman.report;"
        f"d = ochuman.load({str(SAMPLE)!r}); d.to_frame(); ochuman.to_coco(d);"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'pose2seg')];"
        "assert not bad, bad"
    )


def test_ochuman_stats_never_loads_torch():
    _run(
        "import sys; from cli.ochuman_cmd import main;"
        f"main(['stats', {str(SAMPLE)!r}, '--format', 'json'], standalone_mode=False);"
        "assert 'torch' not in sys.modules"
    )


def test_embedded_sample_is_the_package_data():
    import ochuman.data

    assert ochuman.data.SAMPLE_ANNOTATIONS == SAMPLE
    assert len(list(ochuman.data.SAMPLE_IMAGES.glob("*.jpg"))) == 10
    assert (ochuman.data.SAMPLE_DIR / "LICENSE-NOTE.md").is_file()


def test_no_import_circle():
    """No module of ochuman, pose2seg or cli reaches itself through its imports (function-level
    imports included): each step can be read, tested and changed below the ones that use it."""
    import grimp

    graph = grimp.build_graph("ochuman", "pose2seg", "cli", cache_dir=None)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.append(" -> ".join((module, *back)))
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_public_evaluation_names_keep_their_old_paths():
    """README's ``from ochuman.eval import ...`` and the former ``ochuman.benchmark`` give the same
    objects; ``import ochuman`` keeps its top-level names."""
    import ochuman
    import ochuman.benchmark as old
    import ochuman.eval as new

    for name in ("evaluate_results", "resolve_ground_truth", "GroundTruth", "EvalReport", "find_native_file"):
        assert getattr(old, name) is getattr(new, name), name
    assert {"load", "Dataset", "MaxIoURange", "to_coco", "OCHumanError"} <= set(ochuman.__all__)


def test_ochuman_eval_never_loads_numpy_ma(tmp_path):
    """numpy.ma costs 12 ms of a command's start; np.isin / np.unique import it on first use,
    so the evaluation path does without them (bbox, segm, keypoints; one subset and levels)."""
    import json

    from .ochuman.workloads import build_workload

    for iou_type in ("bbox", "segm", "keypoints"):
        workload = build_workload(iou_type, 3, per_image=((3, 4), (1, 2)) * 20)
        for record in (*workload["gt"]["images"], *workload["gt"]["annotations"], *workload["results"]):
            key = "id" if "file_name" in record else "image_id"
            record[key] *= 1_000_003  # 40 sparse ids: numpy's isin would sort (np.unique), not tabulate or loop
        gt, results = tmp_path / f"{iou_type}_gt.json", tmp_path / f"{iou_type}_results.json"
        gt.write_text(json.dumps(workload["gt"]))
        results.write_text(json.dumps(workload["results"]))
        for subset in ("all", "levels"):
            _run("import sys; from cli.ochuman_cmd import main;"
                 f"main(['eval', '--gt', {str(gt)!r}, '--results', {str(results)!r}, '--iou-type', {iou_type!r},"
                 f" '--subset', {subset!r}, '--format', 'json'], standalone_mode=False);"
                 "assert 'numpy.ma' not in sys.modules, 'numpy.ma was loaded'")


def test_the_drop_in_starts_without_the_dataset_modules(coco_mini, tmp_path):
    """``ochuman.compat`` (a pycocotools script's one changed import) loads neither
    ``ochuman.io`` nor what it imports (the native reader, conversion, records, subsets: ~5 ms of
    every script's start), and the usual script on files does not need them."""
    import json

    from .ochuman.test_compat import make_results

    results = tmp_path / "results.json"
    results.write_text(json.dumps(make_results(coco_mini, "segm", seed=3)))
    _run("import sys; from ochuman.compat import COCO, COCOeval;"
         f"gt = COCO({str(coco_mini)!r}); E = COCOeval(gt, gt.loadRes({str(results)!r}), 'segm');"
         "E.evaluate(); E.accumulate(); E.summarize();"
         "bad = [m for m in ('ochuman.io', 'ochuman.convert', 'ochuman.records', 'ochuman.subsets') if m in sys.modules];"
         "assert not bad, bad")


def test_ochuman_eval_hashes_nothing_for_csv(tmp_path):
    """``hashlib`` (~3 ms of a command's start: OpenSSL) is imported only where a hash is made:
    ``ochuman eval --format csv`` (no protocol cards) never loads it, from the console script's
    early reads to the printed rows; json output still hashes. (The table goes through tabulate,
    whose wcwidth, where installed, imports hashlib itself.)"""
    import json

    from .ochuman.workloads import build_workload

    workload = build_workload("bbox", 5, per_image=((3, 4), (1, 2)) * 20)
    gt, results = tmp_path / "gt.json", tmp_path / "results.json"
    gt.write_text(json.dumps(workload["gt"]))
    results.write_text(json.dumps(workload["results"]))
    for fmt, loaded in (("csv", False), ("json", True)):
        _run("import sys; from cli.early_reads import start_early_reads; from cli.ochuman_cmd import main;"
             f"args = ['eval', '--gt', {str(gt)!r}, '--results', {str(results)!r}, '--iou-type', 'bbox',"
             f" '--subset', 'levels', '--format', {fmt!r}];"
             "start_early_reads(args); main(args, standalone_mode=False);"
             f"assert ('hashlib' in sys.modules) == {loaded!r}, sys.modules.get('hashlib')")
