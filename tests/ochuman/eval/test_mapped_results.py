"""A results file is read through a memory map, scanned and hashed in threads: none of them may
still read it once ``evaluate_results`` has returned or raised, or a caller that rewrites the
file next (a training loop's next epoch) would end its process with SIGBUS."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    from ochuman.errors import OCHumanError
    from ochuman.eval.run import evaluate_results

    folder = Path(sys.argv[1])
    results, gt = folder / "results.json", folder / "gt.json"
    record = {"image_id": 1, "category_id": 1, "bbox": [0.5, 0.25, 5.125, 4.0625], "score": 0.875}
    results.write_text(json.dumps([record] * 400000))  # 16 MB: hashed in a thread of its own
    gt.write_text('{"images": [], "annotations": [{"id": 1}]}')  # refused quickly
    for attempt in range(3):
        try:
            evaluate_results(str(results), gt=str(gt), iou_type="bbox", subsets=("all",))
        except OCHumanError:
            pass
        size = results.stat().st_size
        with open(results, "r+b") as handle:  # the file truncated, then written again
            handle.truncate(0)
        time.sleep(0.2)
        with open(results, "r+b") as handle:
            handle.write(b" " * size)
    print("survived")
''')


def test_no_thread_reads_the_results_file_after_an_evaluation_raised(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "survived", (done.returncode, done.stderr[-2000:])
