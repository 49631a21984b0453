"""`lcengine prep DATASET --source PATH_OR_URL [--out DIR]`: official files -> lcengine shards."""

from __future__ import annotations

import os
from pathlib import Path

import click

from lcengine.storage import StorageError, hold, make_directory
from lcengine.data.errors import DataError
from lcengine.datahome import dataset_dir

from .cifar import cifar_plan
from .download import CIFAR_URL, MNIST_MIRRORS, fetch_cifar, fetch_mnist
from .imagenet import imagenet_plan
from .mnist import mnist_plan
from .options import check_prep_options
from .verify import verify_and_exit
from .writer import prepare

DATASETS = ("mnist", "cifar10", "imagenet")
DEFAULT_STORAGE = {"mnist": "raw", "cifar10": "raw", "imagenet": "jpeg"}
URL_SCHEMES = ("http://", "https://", "file://")


def resolve_source(dataset: str, source: str | None, download: bool, out: Path) -> Path:
    """A local path; for a URL (or --download) the files fetched into OUT/downloads."""
    if source is not None and not source.startswith(URL_SCHEMES):
        return Path(source)
    if source is None and not download:
        raise DataError(f"{dataset}: give --source PATH_OR_URL, or --download for the official "
                        "files")
    if dataset == "imagenet":
        raise DataError("imagenet: cannot be downloaded automatically (it needs an account at "
                        "image-net.org); download it, then pass --source DIR")
    into = out / "downloads"
    if dataset == "mnist":
        return fetch_mnist([source] if source else MNIST_MIRRORS, into)
    return fetch_cifar(source or CIFAR_URL, into)


@click.command("prep")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.option("--verify", metavar="DIR", is_eager=True, expose_value=False,
              callback=verify_and_exit, help="check every shard in DIR against the checksums "
              "of its manifest, then exit (no DATASET needed)")
@click.option("--source", help="directory, archive or URL (http, https, file) of the official "
              "files; for MNIST a URL is the folder that holds the four files")
@click.option("--download", is_flag=True, help="fetch the official files (MNIST, CIFAR-10)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="directory for the shards; rerun with the same one to finish an interrupted "
              "prep  [default: DATA_HOME/DATASET, where `lcengine train --dataset DATASET` "
              "looks; see `lcengine info`]")
@click.option("--storage", type=click.Choice(["raw", "jpeg"]),
              help="raw uint8 pixels (default for MNIST, CIFAR-10) or re-encoded JPEG bytes "
              "(default for ImageNet); see docs/data.md")
@click.option("--resize", default=224, show_default=True,
              help="ImageNet: scale the shorter side to this")
@click.option("--crop", default=224, show_default=True,
              help="ImageNet: keep the centre crop x crop")
@click.option("--jpeg-quality", default=90, show_default=True, help="for --storage jpeg")
@click.option("--shard-mb", default=256.0, show_default=True,
              help="bound on the image bytes of one shard")
@click.option("--gzip", is_flag=True, help="gzip-compress raw shards (smaller, slower to load)")
@click.option("--limit", type=int, help="keep the first N images of each class (quick tests)")
@click.option("--workers", default=os.cpu_count() or 1, show_default=True,
              help="decoding processes for image files")
@click.option("--strict", is_flag=True, help="an undecodable image is an error, not skipped")
@click.option("--no-verify", is_flag=True, help="accept official-named files whose md5 differs")
@click.option("--val-labels", type=click.Path(dir_okay=False, path_type=Path),
              help="ImageNet: ground truth for a flat val/ folder")
def prep(dataset, source, download, out, storage, resize, crop, jpeg_quality, shard_mb, gzip,
         limit, workers, strict, no_verify, val_labels):
    """Convert DATASET (mnist, cifar10, imagenet) from its official files to shards in OUT
    (default: the data home's DATASET folder)."""
    storage = storage or DEFAULT_STORAGE[dataset]
    out = out or dataset_dir(dataset)
    try:
        check_prep_options(limit=limit, shard_mb=shard_mb, jpeg_quality=jpeg_quality,
                           workers=workers, resize=resize, crop=crop)
        if dataset == "mnist" and storage == "jpeg":
            raise DataError("mnist: --storage jpeg is for RGB images; MNIST is stored raw")
        if crop > resize:
            raise DataError(f"--crop {crop} is larger than --resize {resize}")
        make_directory(out, "choose another --out")
        click.get_current_context().with_resource(hold(out, "lcengine prep"))
        path = resolve_source(dataset, source, download, out)
        if dataset == "mnist":
            plan = mnist_plan(path, verify=not no_verify, limit=limit)
        elif dataset == "cifar10":
            plan = cifar_plan(path, verify=not no_verify, limit=limit, storage=storage,
                              quality=jpeg_quality)
        else:
            plan = imagenet_plan(path, limit=limit, storage=storage, resize=resize, crop=crop,
                                 quality=jpeg_quality, val_labels=val_labels)
        manifest = prepare(plan, out, shard_bytes=int(shard_mb * 2**20), compress=gzip,
                           workers=workers, strict=strict)
    except (DataError, StorageError) as err:
        raise click.ClickException(str(err)) from None
    for name, split in manifest["splits"].items():
        skipped = f", {len(split['skipped'])} skipped (listed in the manifest)" \
            if split["skipped"] else ""
        click.echo(f"{dataset} {name}: {split['count']} images in {len(split['shards'])} "
                   f"shard(s){skipped}")
    click.echo(f"wrote {out}")
