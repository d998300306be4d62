import pandas as pd
from typer.testing import CliRunner

from sparktrain.cli import app

runner = CliRunner()


def run(*arguments: str):
    return runner.invoke(app, list(arguments), catch_exceptions=False)


def said(result) -> str:
    return " ".join(result.output.split())


def test_enrich_sentiment_of_a_csv(spark, tmp_path):
    source = tmp_path / "reviews.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 3],
            "review": [
                "Great value, I love it, works perfectly.",
                "Broken on arrival, awful, a waste of money.",
                None,
            ],
        }
    ).to_csv(source, index=False)
    target = tmp_path / "enriched.parquet"

    result = run(
        "enrich", "sentiment", str(source), "--column", "review", "--out", str(target)
    )
    assert result.exit_code == 0, result.output
    assert f"AnalyzeSentiment: wrote 3 row(s) to {target}" in said(result)
    frame = pd.read_parquet(target).sort_values("id")
    labels = [None if s is None else s["label"] for s in frame["sentiment"]]
    assert labels == ["positive", "negative", None]
    assert frame["sentiment_error"].isna().all()


def test_enrich_key_phrases_takes_top_k_and_language(spark, tmp_path):
    source = tmp_path / "notes.json"
    source.write_text(
        '{"body": "Der schnelle braune Fuchs springt über den faulen Hund im Park."}\n'
    )
    target = tmp_path / "phrases"
    result = run(
        "enrich",
        "keyphrases",
        str(source),
        "--column",
        "body",
        "--out",
        str(target),
        "--top-k",
        "2",
        "--language",
        "de",
        "--output-col",
        "kp",
    )
    assert result.exit_code == 0, result.output
    (phrases,) = pd.read_parquet(target)["kp"]
    assert len(phrases) == 2


def test_enrich_faces_of_an_image_folder_reports_the_broken_file(
    spark, image_folder, tmp_path
):
    target = tmp_path / "faces"
    folder = str(image_folder)
    result = run("enrich", "faces", folder, "--column", "content", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert "DetectFaces: wrote 5 row(s)" in said(result)
    assert "1 row(s) failed (see the error column)" in said(result)
    frame = pd.read_parquet(target)
    names = frame["path"].str.rsplit("/", n=1).str[-1]
    faces = dict(zip(names, frame["faces"], strict=True))
    assert len(faces["astronaut.png"]) == 1


def test_enrich_refuses_an_option_the_model_does_not_take(tmp_path):
    result = run(
        "enrich",
        "sentiment",
        "x.csv",
        "--column",
        "c",
        "--out",
        str(tmp_path / "o"),
        "--top-k",
        "3",
    )
    assert result.exit_code == 2
    assert "'enrich sentiment' takes no --top-k" in said(result)


def test_enrich_names_a_missing_column(spark, tmp_path):
    source = tmp_path / "t.csv"
    source.write_text("text\nhello\n")
    result = run(
        "enrich",
        "language",
        str(source),
        "--column",
        "body",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 1
    assert "error: DetectLanguage: input column 'body' is not in the table" in said(
        result
    )


def test_enrich_will_not_overwrite_without_asking(tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    result = run("enrich", "ocr", "scans", "--column", "content", "--out", str(target))
    assert result.exit_code == 2
    assert "pass --overwrite to replace it" in said(result)


def test_enrich_embed_writes_vectors_to_parquet(spark, tmp_path):
    source = tmp_path / "sentences.parquet"
    pd.DataFrame({"s": ["A cat sat on the mat.", "Markets rallied today."]}).to_parquet(
        source
    )
    target = tmp_path / "vectors"
    result = run("enrich", "embed", str(source), "--column", "s", "--out", str(target))
    assert result.exit_code == 0, result.output

    vectors = spark.read.parquet(str(target)).collect()
    assert [row.embedding.size for row in vectors] == [384, 384]
    assert all(row.embedding_error is None for row in vectors)
