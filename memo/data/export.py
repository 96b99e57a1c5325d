"""Write the built-in corpus in a dataset's real file layouts, to try the files source without them.

    python -m memo.data.export [--dataset NAME] [--format FORMAT] --out DIR [--scale S] [--seed N]

writes the built-in corpus of memo/conf/dataset/NAME.yaml (default: the configured dataset) in one
of the formats its component offers (default `release`, the authors' files, which
`dataset.dir=DIR dataset.source=files` reads back; MOSEI also offers `csd`, the CMU Multimodal
SDK's sequences, which `python -m memo.data.prepare mosei --csd DIR --out OUT` prepares).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from memo.cli_args import path_argument
from memo.composition import compose_config, composition_error
from memo.data.components import build_component
from memo.data.datasets.base import Dataset
from memo.data.split import SPLITS
from memo.data.synthetic import build_corpus
from memo.data.validate import output_folder
from memo.errors import MemoError


def main(argv: list[str] | None = None) -> None:
    """Build the built-in corpus from the config tree and export it."""
    parser = argparse.ArgumentParser(
        prog="python -m memo.data.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset", help="a memo/conf/dataset option (default: the configured one)"
    )
    parser.add_argument("--format", default="release", help="a format of the dataset's component")
    parser.add_argument(
        "--out", required=True, type=path_argument, help="folder to write the files to"
    )
    parser.add_argument("--scale", type=float, help="corpus size (default: dataset.scale)")
    parser.add_argument("--seed", type=int, default=0, help="dataset.synthetic.seed")
    args = parser.parse_args(argv)
    overrides = [f"dataset.synthetic.seed={args.seed}"]
    if args.dataset is not None:
        overrides.append(f"dataset={args.dataset}")
    if args.scale is not None:
        overrides.append(f"dataset.scale={args.scale}")
    try:
        try:
            cfg = compose_config(overrides)
        except (HydraException, OmegaConfBaseException) as error:
            raise MemoError(composition_error(error, overrides)) from None
        dataset = build_component(cfg.dataset, "dataset", Dataset)
        exports = dataset.exports()
        if args.format not in exports:
            raise MemoError(
                f"--format {args.format}: dataset {dataset.name} is written as "
                f"{' | '.join(exports) or 'no format'}"
            )
        out = output_folder(args.out, "--out")  # before the corpus is built
        corpus = build_corpus(dataset, Path(cfg.paths.cache_dir))
        export = exports[args.format]
        written = export.write(corpus, out)
    except MemoError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    sizes = ", ".join(f"{s} {len(corpus.splits[s])}" for s in SPLITS)
    print(f"wrote {len(written)} files ({sizes}) to {args.out}")
    print(export.then.format(name=dataset.name, out=args.out))


if __name__ == "__main__":
    main()
