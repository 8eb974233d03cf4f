"""The notebooks run from a clean kernel (this interpreter's), output-free as committed, and show
what they promise."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_explore_occlusion.ipynb", "02_evaluate_results.ipynb", "03_pose2seg.ipynb")
KERNEL = "ochuman-test-venv"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec running ipykernel with *this* interpreter (the venv's), whatever `python`
    is on PATH or which "python3" kernel is installed elsewhere."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ochuman tests", "language": "python",
    }))
    return root


def _outputs(cell, kind: str) -> list:
    if kind == "png":
        return [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    if kind == "text":  # a stream's consecutive messages as one text, as a notebook shows them
        parts, last_stream = [], None  # (the kernel may send a print's text and its newline apart)
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == last_stream:
                parts[-1] += o.text
            elif o.output_type == "stream":
                parts.append(o.text)
            elif "text/plain" in o.get("data", {}):
                parts.append(o.data["text/plain"])
            last_stream = o.name if o.output_type == "stream" else None
        return parts
    raise ValueError(kind)


def test_a_print_sent_in_two_stream_messages_reads_as_one_output():
    # (seen in a fresh-clone CI: the kernel sent a print's text and its newline apart)
    cell = nbformat.v4.new_code_cell("print(x); table")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="equal: True"),
                    nbformat.v4.new_output("stream", name="stdout", text="\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "the table"}, execution_count=1)]
    assert _outputs(cell, "text") == ["equal: True\n", "a warning\n", "the table"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"
    text = "\n".join(c.source for c in nb.cells)
    assert "../shared" not in text and "SAMPLE_ANNOTATIONS" in text


def test_generator_writes_the_committed_notebooks(tmp_path, monkeypatch):
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name, cells in make_notebooks.NOTEBOOKS.items():
        built = make_notebooks.build(cells, name.split("_")[0])
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [(c.cell_type, c.source) for c in built.cells] == [(c.cell_type, c.source) for c in committed.cells], \
            f"{name} differs from notebooks/make_notebooks.py: run python notebooks/make_notebooks.py"


def _execute(name, kernel_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120, allow_errors=False,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert elapsed < 60, f"{name} took {elapsed:.0f} s on this machine (budget: 60 s)"
    assert not list(tmp_path.iterdir()), "notebooks must not write into their working directory"
    return [c for c in nb.cells if c.cell_type == "code"]


def _cell_with(cells, snippet: str):
    found = [c for c in cells if snippet in c.source]
    assert len(found) == 1, snippet
    return found[0]


@pytest.mark.slow
def test_explore_occlusion_runs(kernel_dir, tmp_path, monkeypatch):
    cells = _execute("01_explore_occlusion.ipynb", kernel_dir, tmp_path, monkeypatch)
    assert "10 images, 29 boxed persons, 16 with keypoints and mask" in _outputs(cells[0], "text")[0]
    stats = "\n".join(_outputs(_cell_with(cells, "ochuman.dataset_stats(bench)"), "text"))
    assert "benchmark (kpt&segm)" in stats and "persons_oc50" in stats
    for snippet in ("max_iou_histogram(bench)", "hardest_grid(data, 8)", "draw_persons(data.read_image(k)"):
        assert len(_outputs(_cell_with(cells, snippet), "png")) == 1, snippet


@pytest.mark.slow
def test_evaluate_results_runs(kernel_dir, tmp_path, monkeypatch):
    cells = _execute("02_evaluate_results.ipynb", kernel_dir, tmp_path, monkeypatch)
    board = "\n".join(_outputs(_cell_with(cells, "leaderboard = report.to_frame()"), "text"))
    for word in ("skeleton prior", "eroded + shifted GT", "moderate", "hard"):
        assert word in board
    check = _outputs(_cell_with(cells, "pycocotools_stats("), "text")
    assert check[0].strip() == "pycocotools stats equal ours: True"
    assert "ochuman_coco_format_val_range_0.75_1.00.json" in check[1]
    assert "persons" in "\n".join(_outputs(_cell_with(cells, "report.ap_by_max_iou()"), "text"))
    assert len(_outputs(_cell_with(cells, "AP per MaxIoU bin"), "png")) == 1


@pytest.mark.slow
def test_pose2seg_runs(kernel_dir, tmp_path, monkeypatch):
    cells = _execute("03_pose2seg.ipynb", kernel_dir, tmp_path, monkeypatch)
    assert "nearest_reference" in "\n".join(_outputs(_cell_with(cells, "compare_templates("), "text"))
    assert len(_outputs(_cell_with(cells, "templates_figure("), "png")) == 1
    windows = [c for c in cells if "align_windows(data.read_image(k)" in c.source]
    assert len(windows) == 2 and all(len(_outputs(c, "png")) == 1 for c in windows)
    assert "templates: ('fallback', 'T0')" in "\n".join(_outputs(windows[1], "text"))
    untrained = _cell_with(cells, "random weights")
    assert "masks (2, 664, 1000) uint8" in "\n".join(_outputs(untrained, "text"))
    assert "UNTRAINED" in untrained.source and len(_outputs(untrained, "png")) == 1
    assert len(_outputs(_cell_with(cells, "side_by_side(image, data, k, prior)"), "png")) == 1
