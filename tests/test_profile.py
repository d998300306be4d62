"""The profiling pass behind column decisions: it counts distinct values only
where a decision depends on them, and must decide the same either way."""

import pytest

from sparktrain.columns import decide


@pytest.fixture(scope="module")
def table(spark):
    rows = [
        (
            i,  # identifier
            (i * 7919) % 100_000,  # wide integer range, every value different
            (i % 40) * 1000,  # wide range, 40 values: not an identifier
            float(i % 3) if i % 5 else float("nan"),  # NaN counts as missing
            2.5 if i % 2 else float("nan"),  # one value besides NaN: constant
            f"{i:040x}",  # long, one word, unique: an identifier, not text
            "the quick brown fox jumps over the lazy dog number " + str(i % 7),
            ["a", "b", "c"][i % 3],
        )
        for i in range(200)
    ]
    columns = ["id", "code", "bucket", "x", "flat", "hash", "note", "colour"]
    return spark.createDataFrame(rows, columns)


@pytest.fixture(scope="module")
def decisions(table):
    found, rows = decide(table, columns=table.columns)
    assert rows == 200
    return {d.name: d for d in found}


@pytest.mark.parametrize(
    ("column", "kind", "reason"),
    [
        ("id", "excluded", "identifier"),
        ("code", "excluded", "identifier"),
        ("bucket", "numeric", "number"),
        ("x", "numeric", "number"),
        ("flat", "excluded", "constant"),
        ("hash", "excluded", "identifier"),
        ("note", "text", "free text"),
        ("colour", "categorical", "one-hot"),
    ],
)
def test_each_column_is_decided_as_before(decisions, column, kind, reason):
    assert decisions[column].kind == kind
    assert decisions[column].reason.startswith(reason)


def test_distinct_values_are_counted_only_where_they_decide(decisions):
    assert decisions["colour"].distinct == 3
    assert decisions["flat"].distinct == 1
    assert decisions["x"].distinct is None  # a number with 2+ values
    # wide enough to hold an identifier, so counted (and found not to be one)
    assert decisions["bucket"].distinct == pytest.approx(40, rel=0.1)
    assert decisions["id"].distinct == pytest.approx(200, rel=0.05)
    assert decisions["x"].nulls == 40


def test_an_empty_number_column_is_excluded(spark):
    frame = spark.createDataFrame(
        [(float(i), None) for i in range(10)], "a double, b bigint"
    )
    found, _ = decide(frame, columns=["a", "b"])
    assert [(d.name, d.kind, d.distinct) for d in found] == [
        ("a", "numeric", None),
        ("b", "excluded", 0),
    ]
