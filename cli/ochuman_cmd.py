"""``ochuman``: the dataset commands - ``stats`` (Table 1), ``convert`` (native -> official COCO-format
files), ``eval`` (COCO AP with the Moderate / Hard breakdown, Table 2) and ``show`` (figures)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from cli.common import (
    Group, OutputFile, OutputFolder, format_option, run_and_exit, show_progress, verbosity_options,
)

# The commands' numpy work needs no BLAS: keep OpenBLAS from starting a spinning thread per
# core at numpy's import (numpy is imported later, by the commands; those threads would
# compete with the evaluator's own). A user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ochuman-toolkit")
@verbosity_options
def main():
    """OCHuman: the Occluded Human dataset toolkit."""


@main.command()
@click.argument("file")
@click.option("--split", type=click.Choice(["val", "test", "all"]), default="all", show_default=True,
              help="Official split of the images (native ochuman.json or official COCO-format files).")
@click.option("--by", type=click.Choice(["split"]), default=None,
              help="One row per split (val, test, all) instead of one row.")
@click.option("--filter", "filter_name", default=None, metavar="FILTER",
              help="Which persons count: none, kpt, segm, kpt&segm, kpt|segm. "
                   "Default: kpt&segm for a native file (the benchmark set, as Table 1), none for COCO.")
@click.option("--range-rule", type=click.Choice(["closed-top", "official"]), default="closed-top",
              show_default=True, help="Hard = [0.75, 1.0] (closed-top) or [0.75, 1.0) (official).")
@click.option("--image-set", "image_sets", multiple=True, type=click.Choice(["all", "fully-labelled"]),
              help="Images: all (the default), or fully-labelled (every boxed person has keypoints and a "
                   "mask; native ochuman.json only); repeatable, rows gain 'image_set'.")
@format_option
@verbosity_options
def stats(file, split, by, filter_name, range_rule, fmt, image_sets):
    """Table-1 statistics of a native ochuman.json or a COCO-format FILE."""
    from ochuman.eval.image_sets import image_set_names, select_image_set
    from ochuman.io import load
    from ochuman.report import render
    from ochuman.stats import dataset_stats, stats_by_split
    from ochuman.subsets import normalise_filter

    chosen = normalise_filter(filter_name)  # fails early, one line, on an unknown filter
    loaded = load(file)
    if filter_name is None and loaded.format == "ochuman":
        chosen = "kpt&segm"
    rows = []
    for image_set in image_set_names(image_sets) if image_sets else [None]:
        dataset = (loaded if image_set is None else select_image_set(loaded, image_set)).filter_persons(chosen)
        if by == "split":
            part = stats_by_split(dataset, range_rule)
        else:
            part = [{"split": split, **dataset_stats(dataset.select_split(split), range_rule)}]
        rows += [row if image_set is None else {"split": row.pop("split"), "image_set": image_set, **row}
                 for row in part]
    head = {"file": file, "filter": chosen or "none"}
    if fmt in ("json", "csv"):
        click.echo(render([{**head, **row} for row in rows], fmt, single=len(rows) == 1 and by is None))
    else:
        click.echo(f"{file} (filter {head['filter']})")
        click.echo(render(rows, fmt, transpose_by="split"))


@main.command()
@click.argument("file")
@click.option("--out", "out_dir", required=True, type=OutputFolder(),
              help="Folder for the COCO-format files (created if missing).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["val", "test", "all"]),
              help="Split(s) to write; repeatable. Default: val and test, the files shipped "
                   "with the dataset.")
@click.option("--range", "ranges", nargs=2, type=float, multiple=True, metavar="LO HI",
              help="Stored MaxIoU range; repeatable. Default: 0 1. Moderate: 0.5 0.75, Hard: 0.75 1.")
@click.option("--range-rule", type=click.Choice(["official", "closed-top"]), default="official",
              show_default=True, help="official: [lo, hi) always (drops MaxIoU == 1.0); "
                                      "closed-top: keeps 1.0 when hi is 1.")
@click.option("--area", type=click.Choice(["box", "mask"]), default="box", show_default=True,
              help="annotation area: the official box area, or the mask's pixel area.")
@click.option("--image-ids", type=click.Choice(["official", "native"]), default="official",
              show_default=True, help="official: renumber 1, 2, ... per file; native: keep the "
                                      "native ids so every file of a dataset shares them.")
@click.option("--with-max-iou", is_flag=True,
              help="Also write each person's stored max_iou (extra field; pycocotools ignores it, "
                   "ochuman stats/eval use it).")
@verbosity_options
def convert(file, out_dir, splits, ranges, range_rule, area, image_ids, with_max_iou):
    """Convert a native ochuman.json FILE to the official COCO-format files."""
    from ochuman.convert import official_file_name, to_coco
    from ochuman.io import load, write_json
    from ochuman.subsets import MaxIoURange

    max_iou_ranges = [MaxIoURange(lo, hi) for lo, hi in (ranges or [(0.0, 1.0)])]
    dataset = load(file)
    for split in splits or ("val", "test"):
        for max_iou_range in max_iou_ranges:
            coco = to_coco(dataset, split, max_iou_range, range_rule=range_rule, area=area,
                           image_ids=image_ids, with_max_iou=with_max_iou, progress=show_progress())
            path = Path(out_dir) / official_file_name(split, max_iou_range)
            write_json(path, coco)
            click.echo(f"{path}: {len(coco['images'])} images, {len(coco['annotations'])} persons")


def _decorators(*decorators):
    """One decorator applying ``decorators`` in the order they are listed (as stacked above a function)."""
    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


# The options naming an evaluation, shared by ``eval`` and ``report``.
evaluation_options = _decorators(
    click.option("--results", "results", multiple=True, required=True, metavar="FILE",
                 help="COCO results file (list of detections); repeat for a leaderboard."),
    click.option("--name", "names", multiple=True, metavar="NAME",
                 help="Row name of each --results, in order (default: the file name)."),
    click.option("--root", envvar="OCHUMAN_ROOT", default=None, metavar="DIR",
                 help="OCHuman folder (ochuman.json, images/); default $OCHUMAN_ROOT."),
    click.option("--gt", "gt_file", default=None, metavar="FILE",
                 help="Evaluate against this native or COCO-format file instead of the root."),
    click.option("--split", type=click.Choice(["val", "test"]), default=None,
                 help="Official split of a native ground truth (--root, or --gt ochuman.json); default val. "
                      "A COCO-format --gt is evaluated as it is: --split with it must name the file's own "
                      "split (official file names say it), else it is refused."),
    click.option("--iou-type", type=click.Choice(["segm", "bbox", "keypoints"]), default="segm",
                 show_default=True),
)


def bootstrap_options(default: int):
    """--bootstrap N (``default`` samples), --seed, --tag: the leaderboard's intervals and cards."""
    return _decorators(
        click.option("--bootstrap", type=click.IntRange(min=0), default=default, show_default=bool(default),
                     metavar="N", help="Resample images N times for 95%% intervals (AP_ci, ...; dAP_vs_first / "
                                       "dAP_ci paired against the first --results; 0: none)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --bootstrap draws."),
        click.option("--tag", "tags", multiple=True, metavar="[NAME:]KEY=VALUE",
                     help="Protocol tag of every results file, or of the one whose row name (or position 1, 2, "
                          "...) is NAME; repeatable. Shown in the protocol cards (JSON, markdown, report)."),
    )


errors_iou_option = click.option("--errors-iou", type=float, default=None, metavar="T",
                                 help="IoU (OKS) threshold of the error classes, in (0, 1]; default 0.5.")
mode_option = click.option(
    "--mode", type=click.Choice(["official", "ignore"]), default="official", show_default=True,
    help="official: out-of-range persons dropped, as pycocotools on the official range "
         "files; ignore: they (and box-only persons) become ignore regions.")


@main.command(name="eval")
@evaluation_options
@click.option("--subset", "subsets", multiple=True, metavar="SUBSET",
              help="all, moderate, hard, levels (all three; the default) or LO:HI; repeatable.")
@mode_option
@click.option("--paper", is_flag=True, help="Add the paper's reported Table-2 rows (segm AP of val or test; "
                                             "a warning says when there are none).")
@click.option("--by-max-iou", is_flag=True, help="Also print AP per MaxIoU bin of 0.05.")
@click.option("--category", "categories", multiple=True, metavar="NAME|ID",
              help="Evaluate this category of the ground truth only (as pycocotools with params.catIds); "
                   "repeatable. Default: every category of the file (useCats=1).")
@click.option("--per-category", is_flag=True,
              help="Also one row per category after each row over the categories (rows gain 'category').")
@click.option("--kpt-sigmas", "kpt_sigmas", default=None, metavar="FILE|LIST",
              help="OKS sigmas of the keypoints evaluation, one per joint: a comma-separated list or a file "
                   "(JSON list or numbers). Default: COCO's 17; needed for files with another keypoint count.")
@click.option("--persons", "persons_file", default=None, metavar="FILE.csv", type=OutputFile(),
              help="Write the per-person table (MaxIoU, best IoU, matched at .5/.75, score).")
@format_option
@click.option("--out", "out_file", default=None, metavar="FILE.json", type=OutputFile(),
              help="Write the report as JSON (atomic).")
@click.option("--plot", "plot_file", default=None, metavar="FILE.png", type=OutputFile(),
              help="Precision/recall per subset (and AP vs MaxIoU with --by-max-iou).")
@click.option("--image-set", "image_sets", multiple=True, type=click.Choice(["all", "fully-labelled"]),
              help="Images: all (the default), or fully-labelled (every boxed person has keypoints and a "
                   "mask; native ground truth only, a COCO file is refused); repeatable, rows gain 'image_set'.")
@click.option("--by-visibility", is_flag=True,
              help="Keypoints: also OKS AP over the joints of each visibility class (native: visible, "
                   "self-occluded, occluded-by-other; COCO: v=2, v=1); rows gain 'visibility'.")
@click.option("--errors", "errors", is_flag=True,
              help="Classify the errors at --errors-iou (duplicate, merged, partial, localization, background, "
                   "missed; keypoints: no merged/partial) per subset (and MaxIoU bin): count and dAP, the AP "
                   "gained by fixing each class alone (TIDE's oracle fixes).")
@errors_iou_option
@click.option("--errors-plot", "errors_plot_file", default=None, metavar="FILE.png", type=OutputFile(),
              help="Figure of the error classes (count and dAP) by MaxIoU bin with --by-max-iou, else by "
                   "subset; implies --errors (as --errors-iou does).")
@bootstrap_options(default=0)
@verbosity_options
def eval_(results, names, root, gt_file, split, iou_type, subsets, mode, paper, by_max_iou, categories,
          per_category, kpt_sigmas, persons_file, fmt, out_file, plot_file, image_sets, by_visibility,
          errors, errors_iou, errors_plot_file, bootstrap, seed, tags):
    """COCO AP of results files on OCHuman, with the Moderate / Hard breakdown (Table 2)."""
    import warnings

    # numpy's OpenBLAS starts a thread per further CPU at import, which spins for a while (60 ms
    # of CPU here, on a 2-CPU machine half of it while the results are read): the evaluation does
    # no BLAS work, so unless told otherwise it asks for none (set before numpy is first imported)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from ochuman.scan import PrefetchedAnnotations, PrefetchedResults

    # Read the first results file and the --gt file while the evaluator is imported (numpy and
    # co. take ~40 ms of one CPU), or take the reads the console script began before click was
    # imported (cli.early_reads); problems are still reported, the ground truth's first.
    from cli.early_reads import hash_wanted, take_annotations, take_results

    hashed = hash_wanted(fmt, out_file)  # the first results file's hash is shown (protocol cards)
    first = take_results(results[0], iou_type, hashed)
    early_gt = take_annotations(gt_file, iou_type == "segm") if first is not None and gt_file else None
    first = first or PrefetchedResults(results[0], iou_type, hash_file=hashed)
    gt_source = (early_gt or PrefetchedAnnotations(gt_file, after=first, masks=iou_type == "segm")) if gt_file else None
    from ochuman.eval.run import evaluate_results
    from ochuman.errors import OCHumanWarning
    from ochuman.io import atomic_write, write_json
    from ochuman.keypoints import read_oks_sigmas
    from ochuman.report import render

    try:
        row_names = _row_names(results, names)
        from ochuman.eval.protocol import parse_tags

        file_tags = parse_tags(tags, row_names)
        chosen = []
        for subset in subsets or ("levels",):
            chosen += ["all", "moderate", "hard"] if subset == "levels" else [subset]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OCHumanWarning)
            report = evaluate_results([first, *results[1:]], row_names, root=root, gt=gt_source, split=split,
                                      iou_type=iou_type, subsets=chosen, mode=mode,
                                      by_max_iou=by_max_iou, per_person=persons_file is not None,
                                      paper=paper, category=list(categories) or None, per_category=per_category,
                                      kpt_sigmas=read_oks_sigmas(kpt_sigmas) if kpt_sigmas is not None else None,
                                      image_set=list(image_sets) or None, by_visibility=by_visibility,
                                      errors=errors or errors_plot_file is not None or errors_iou is not None,
                                      errors_iou=0.5 if errors_iou is None else errors_iou,
                                      bootstrap=bootstrap, seed=seed, tags=file_tags)
    finally:  # no thread reads the results file's mapping once the command returns or raises
        first.finish()
    for warning in (w for w in caught if issubclass(w.category, OCHumanWarning)):
        click.echo(f"Warning: {warning.message}", err=True)
    rows = report.rows()
    if fmt in ("table", "markdown"):
        click.echo(f"{report.iou_type} AP on {report.gt_source} ({report.split}); mode {report.mode}, "
                   f"MaxIoU {report.max_iou_source}, ranges {report.range_rule}")
        shown = [{k: v for k, v in row.items() if k not in ("iou_type", "mode", "max_iou_source", "range_rule")}
                 for row in rows]
        if bootstrap:
            from ochuman.eval.bootstrap import SIGNIFICANCE_NOTE, leaderboard_rows

            shown = leaderboard_rows(shown)
        click.echo(render([{k: v for k, v in row.items() if k != "errors"} for row in shown], fmt))
        if bootstrap and any(str(row.get("dAP_vs_first", "")).endswith("*") for row in shown):
            click.echo(SIGNIFICANCE_NOTE)
        if by_max_iou:
            click.echo("")
            click.echo(render([{k: v for k, v in row.items() if k != "errors"} for row in report.ap_by_max_iou()], fmt))
        if report.errors_iou is not None:
            from ochuman.eval.errors import error_table

            click.echo("")
            click.echo(f"Errors at IoU {report.errors_iou:g}: count dAP")
            click.echo(render(error_table(report), fmt))
        if fmt == "markdown":
            from ochuman.eval.protocol import card_table

            click.echo("")
            click.echo(render(card_table(report.protocol_cards()), fmt))
    elif fmt == "csv" and report.errors_iou is not None:
        from ochuman.eval.errors import error_classes, flat_errors

        classes = error_classes(report.iou_type)
        click.echo(render([{**{k: v for k, v in row.items() if k != "errors"}, **flat_errors(row["errors"], classes)}
                           for row in rows], fmt))
    elif fmt == "json":  # every row with its protocol card
        click.echo(render([{**row, "protocol": card} for row, card in zip(rows, report.protocol_cards())], fmt))
    else:
        click.echo(render(rows, fmt))
    if out_file:
        write_json(out_file, report.to_dict())
    if persons_file:
        with atomic_write(persons_file) as handle:
            handle.write(render(report.persons(), "csv") + "\n")
    if plot_file:
        from ochuman.vis import plot_report

        plot_report(report, plot_file)
    if errors_plot_file:
        from ochuman.vis import plot_errors

        plot_errors(report, errors_plot_file)


def _row_names(results, names) -> list[str]:
    """Row names of the --results (default: the file names); undecodable bytes as \\xNN (they are
    drawn in figures too)."""
    from ochuman.errors import OCHumanError, printable

    if names and len(names) != len(results):
        raise OCHumanError(f"--name given {len(names)} times for {len(results)} --results")
    return [printable(name) for name in (names or [Path(r).name for r in results])]


@main.command()
@evaluation_options
@mode_option
@click.option("--images", "images_dir", default=None, metavar="DIR",
              help="Folder of the image files, for the gallery (default: images/ of the root, or beside "
                   "--gt or its folder).")
@click.option("--gallery", "gallery_size", type=click.IntRange(min=0), default=8, show_default=True, metavar="N",
              help="Persons per gallery section: the N most occluded, and each method's N worst failures "
                   "(0: no gallery).")
@click.option("--title", default=None, help="Title of the page (default: the IoU type and the row names).")
@bootstrap_options(default=1000)
@errors_iou_option
@click.option("--out", "out_file", required=True, metavar="FILE.html", type=OutputFile(),
              help="The page to write (atomic): one HTML file, figures and thumbnails embedded.")
@verbosity_options
def report(results, names, root, gt_file, split, iou_type, mode, images_dir, gallery_size, title, bootstrap, seed,
           tags, errors_iou, out_file):
    """One self-contained HTML page of an evaluation: leaderboard (all, Moderate, Hard), precision/
    recall, AP against MaxIoU, the MaxIoU histogram and a gallery of the hardest persons and of
    each method's worst failures. Its numbers are those of ochuman eval --format json with the
    same options (and --errors --by-max-iou)."""
    import warnings

    import msgspec

    from ochuman.errors import OCHumanWarning
    from ochuman.eval.resolve import resolve_ground_truth
    from ochuman.eval.results import read_results
    from ochuman.eval.run import evaluate_results
    from ochuman.html_report import GallerySource, render_html, write_html
    from ochuman.io import load

    from ochuman.eval.protocol import parse_tags

    row_names = _row_names(results, names)
    file_tags = parse_tags(tags, row_names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OCHumanWarning)
        evaluation = evaluate_results(list(results), row_names, root=root, gt=gt_file, split=split,
                                      iou_type=iou_type, subsets=["all", "moderate", "hard"], mode=mode,
                                      by_max_iou=True, per_person=gallery_size > 0, errors=True,
                                      errors_iou=0.5 if errors_iou is None else errors_iou, bootstrap=bootstrap, seed=seed, tags=file_tags)
        ground = resolve_ground_truth(root, gt_file, split or "val", masks=iou_type == "segm")
    for warning in (w for w in caught if issubclass(w.category, OCHumanWarning)):
        click.echo(f"Warning: {warning.message}", err=True)
    dataset = load(ground.source, images_dir=images_dir)
    if dataset.format == "ochuman":  # the benchmark persons of the split, as ochuman stats --split counts them
        dataset = dataset.filter_persons("kpt&segm").select_split(ground.split)
    gallery = None
    if gallery_size > 0:
        records = {name: msgspec.to_builtins(read_results(path)) for name, path in zip(row_names, results)}
        gallery = GallerySource(ground, records, dataset.images_dir)
    page = render_html(evaluation, dataset=dataset, gallery=gallery, gallery_size=gallery_size, title=title,
                       progress=show_progress())
    write_html(out_file, page)
    click.echo(f"{out_file}: report of {len(row_names)} results file{'s' * (len(row_names) != 1)} "
               f"({len(page.encode('utf-8')) / 1e6:.1f} MB)")


@main.command()
@click.argument("file")
@click.option("--images", "images_dir", default=None, metavar="DIR",
              help="Folder holding the image files (default: images/ beside FILE or its folder).")
@click.option("--image-id", default=None, metavar="ID",
              help="Draw the persons of this image (its id or file name), coloured by MaxIoU.")
@click.option("--hardest", type=click.IntRange(min=1), default=None, metavar="N",
              help="Grid of the N most occluded persons with a mask, hardest first.")
@click.option("--histogram", is_flag=True,
              help="Histogram of MaxIoU with the Moderate/Hard bands and Table 1's numbers.")
@click.option("--results", "results_file", default=None, metavar="FILE",
              help="With --image-id: ground truth left, this COCO results file's detections right.")
@click.option("--score-threshold", type=float, default=0.5, show_default=True,
              help="With --results: draw detections scoring at least this.")
@click.option("--filter", "filter_name", default=None, metavar="FILTER",
              help="Which persons count: none, kpt, segm, kpt&segm, kpt|segm. Default: kpt&segm for "
                   "a native file's histogram (as ochuman stats), none otherwise.")
@click.option("--out", "out_file", required=True, metavar="FILE.png", type=OutputFile(),
              help="Picture to write (atomic); format from the suffix (png, jpg; figures also pdf, svg).")
@verbosity_options
def show(file, images_dir, image_id, hardest, histogram, results_file, score_threshold, filter_name, out_file):
    """Draw FILE's persons: one image (--image-id, beside --results), the hardest (--hardest N)
    or the MaxIoU histogram (--histogram)."""
    import math
    import warnings

    from ochuman.errors import OCHumanError, OCHumanWarning
    from ochuman.io import load
    from ochuman.subsets import normalise_filter

    modes = [name for name, given in (("--image-id", image_id is not None), ("--hardest", hardest is not None),
                                      ("--histogram", histogram)) if given]
    if len(modes) != 1:
        raise OCHumanError("choose one of --image-id, --hardest, --histogram"
                           + (f" (got {' and '.join(modes)})" if modes else ""))
    if results_file and image_id is None:
        raise OCHumanError("--results needs --image-id (the image to compare)")
    if not math.isfinite(score_threshold):
        raise OCHumanError(f"--score-threshold: expected a finite number, got {score_threshold}")
    chosen = normalise_filter(filter_name)
    dataset = load(file, images_dir=images_dir)
    if not histogram and dataset.images_dir is None:
        raise OCHumanError(f"{file}: no images/ folder beside it: pass --images DIR (the folder of its image files)")
    if filter_name is None and histogram and dataset.format == "ochuman":
        chosen = "kpt&segm"
    dataset = dataset.filter_persons(chosen)
    with warnings.catch_warnings(record=True) as caught:  # a truncated image: drawn, and said
        warnings.simplefilter("always", OCHumanWarning)
        _draw(dataset, images_dir, image_id, hardest, histogram, results_file, score_threshold, out_file)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)


def _draw(dataset, images_dir, image_id, hardest, histogram, results_file, score_threshold, out_file) -> None:
    """The picture ``ochuman show`` asked for, written to ``out_file``."""
    from ochuman import vis

    if histogram:
        vis.save_figure(vis.max_iou_histogram(dataset), out_file)
        click.echo(f"{out_file}: MaxIoU histogram of {int((~dataset.iscrowd).sum())} persons")
    elif hardest is not None:
        vis.save_figure(vis.hardest_grid(dataset, hardest, images_dir), out_file)
        click.echo(f"{out_file}: the {len(vis.hardest_persons(dataset, hardest))} most occluded persons")
    else:
        k = vis.find_image(dataset, image_id)
        pixels = dataset.read_image(k, images_dir)
        image = dataset.images[k]
        if results_file:
            import msgspec

            from ochuman.eval.results import read_results

            records = msgspec.to_builtins(read_results(results_file))
            mine = vis.results_for_image(records, dataset, k)
            if records and not mine:
                click.echo(f"Warning: {results_file}: none of its {len(records)} results is for "
                           f"{image.file_name} (image id {image.image_id!r})", err=True)
            vis.save_figure(vis.side_by_side(pixels, dataset, k, mine, score_threshold), out_file)
            click.echo(f"{out_file}: {image.file_name}, ground truth beside {len(mine)} results")
        else:
            vis.save_image(vis.draw_persons(pixels, dataset, k), out_file)
            n = int(((dataset.image_index == k) & ~dataset.iscrowd).sum())
            click.echo(f"{out_file}: {image.file_name}, {n} persons")


def run() -> None:
    """The ``ochuman`` console script (``main`` is the click group, for tests and embedding)."""
    run_and_exit(main)


if __name__ == "__main__":  # python -m cli.ochuman_cmd
    run()
