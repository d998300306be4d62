import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.linalg import VectorUDT

from sparktrain import (
    AnalyzeSentiment,
    DetectLanguage,
    EmbedText,
    ExtractKeyPhrases,
    RecognizeEntities,
)

POSITIVE = [
    "I love this phone, the screen is gorgeous and the battery lasts forever.",
    "What a wonderful film, the acting was brilliant.",
    "The staff were friendly and helpful, a great experience.",
    "Absolutely delicious food and excellent service!",
    "This is the best book I have read all year.",
    "I am so happy with my purchase, highly recommended.",
    "The hotel was clean, comfortable and beautiful.",
    "Fantastic concert, the band was amazing.",
    "Our new puppy brings us so much joy.",
    "Thank you, the support team was superb and kind.",
    "An excellent course, clear and enjoyable.",
    "The garden looks lovely in spring, a real delight.",
]
NEGATIVE = [
    "This phone is terrible, the screen broke after a day.",
    "What an awful film, boring and badly acted.",
    "The staff were rude and unhelpful, a horrible experience.",
    "Disgusting food and the worst service ever.",
    "I hate this book, it is dull and stupid.",
    "I am very disappointed and angry with this purchase.",
    "The hotel was dirty, noisy and ugly.",
    "A dreadful concert, the sound was painful.",
    "The delay was a disaster and ruined our trip.",
    "Useless support, they ignored my complaint.",
    "A sad, miserable day full of bad news.",
    "The product failed and I lost my money, a total scam.",
]


def test_sentiment_labels_clear_sentences_with_a_margin(text_frame):
    frame = text_frame(POSITIVE + NEGATIVE)
    rows = AnalyzeSentiment().transform(frame).collect()

    expected = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    labels = [row.sentiment.label for row in rows]
    pairs = list(zip(labels, expected, strict=True))
    accuracy = np.mean([got == want for got, want in pairs])
    assert accuracy >= 0.9, pairs
    for row in rows:
        scores = row.sentiment
        assert row.sentiment_error is None
        assert -1 <= scores.score <= 1
        total = scores.positive + scores.neutral + scores.negative
        assert total == pytest.approx(1, abs=0.01)


def test_sentiment_nulls_and_empty_text_give_null(text_frame):
    rows = AnalyzeSentiment().transform(text_frame([None, "", "  ", "good"])).collect()
    assert [row.sentiment is None for row in rows] == [True, True, True, False]
    assert all(row.sentiment_error is None for row in rows)


def test_sentiment_thresholds_move_the_label(text_frame):
    frame = text_frame(["The food was okay, fairly good."])
    default = AnalyzeSentiment().transform(frame).first().sentiment
    strict = AnalyzeSentiment(positiveThreshold=0.95).transform(frame).first()
    assert default.label == "positive"
    assert strict.sentiment.label == "neutral"


SENTENCES = {
    "en": "The weather is lovely today and we are going to the beach.",
    "fr": "Le temps est magnifique aujourd'hui et nous allons à la plage.",
    "de": "Das Wetter ist heute herrlich und wir gehen an den Strand.",
    "es": "Hoy hace un tiempo precioso y vamos a ir a la playa.",
    "it": "Oggi il tempo è bellissimo e andiamo al mare.",
    "pt": "O tempo está maravilhoso hoje e vamos à praia.",
    "nl": "Het weer is vandaag prachtig en we gaan naar het strand.",
    "ru": "Сегодня прекрасная погода, и мы идём на пляж.",
    "ja": "今日はとても良い天気なので、私たちは海に行きます。",
}


def test_language_of_sentences_in_nine_languages(text_frame):
    frame = text_frame([*SENTENCES.values(), "12345 !!!", None])
    rows = DetectLanguage().transform(frame).collect()

    found = [row.language.language for row in rows[: len(SENTENCES)]]
    assert found == list(SENTENCES)
    assert all(row.language.confidence > 0.2 for row in rows[: len(SENTENCES)])
    assert rows[-2].language.language is None
    assert rows[-1].language is None
    assert all(row.language_error is None for row in rows)


def test_lingua_engine_with_a_narrowed_choice(text_frame):
    frame = text_frame([SENTENCES["es"], SENTENCES["pt"]])
    detector = DetectLanguage(engine="lingua", languages=["ES", "pt"], outputCol="lang")
    rows = detector.transform(frame).collect()
    assert [row.lang.language for row in rows] == ["es", "pt"]


PARAGRAPH = (
    "Apache Spark is an open-source unified analytics engine for large-scale "
    "data processing. Spark was started by Matei Zaharia at UC Berkeley's "
    "AMPLab in 2009, and in 2013 the project was donated to the Apache Software "
    "Foundation. Databricks, a company founded by the creators of Apache Spark, "
    "sells a data platform built on Spark from its offices in San Francisco."
)


def test_key_phrases_of_a_known_paragraph(text_frame):
    extractor = ExtractKeyPhrases(topK=8)
    row = extractor.transform(text_frame([PARAGRAPH])).first()

    phrases = [p.phrase for p in row.keyPhrases]
    scores = [p.score for p in row.keyPhrases]
    assert len(phrases) == 8
    assert scores == sorted(scores)
    assert "unified analytics engine" in phrases[:3]
    assert {"Apache Spark", "large-scale data processing"} <= set(phrases)
    assert all(phrase in PARAGRAPH for phrase in phrases)
    assert row.keyPhrases_error is None


def test_entities_of_a_known_paragraph_with_offsets(text_frame):
    row = RecognizeEntities().transform(text_frame([PARAGRAPH, None])).collect()

    entities = {(e.text, e.type) for e in row[0].entities}
    assert {
        ("Matei Zaharia", "PERSON"),
        ("2009", "DATE"),
        ("2013", "DATE"),
        ("San Francisco", "GPE"),
        ("the Apache Software Foundation", "ORG"),
    } <= entities
    for entity in row[0].entities:
        assert PARAGRAPH[entity.start : entity.end] == entity.text
    assert row[1].entities is None


def test_embeddings_put_related_sentences_closer(text_frame):
    sentences = [
        "A man is playing a guitar on stage.",
        "A musician performs a song with his guitar.",
        "The stock market fell sharply this morning.",
        "Shares dropped as investors sold off equities.",
        None,
    ]
    rows = EmbedText().transform(text_frame(sentences)).collect()
    vectors = [row.embedding.toArray() for row in rows[:4]]

    assert rows[4].embedding is None
    assert all(v.shape == (384,) for v in vectors)
    assert all(np.linalg.norm(v) == pytest.approx(1, abs=1e-4) for v in vectors)
    similarity = np.array([[a @ b for b in vectors] for a in vectors])
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[0, 1] > similarity[0, 3] + 0.3
    assert similarity[2, 3] > similarity[2, 0] + 0.3
    assert similarity[2, 3] > similarity[2, 1] + 0.3


def test_embedding_column_feeds_a_spark_ml_classifier(spark):
    music = [
        "The band played a loud rock concert.",
        "She sang a beautiful song with the choir.",
        "He practices the piano every evening.",
        "The orchestra performed a symphony.",
        "The drummer kept a steady rhythm.",
        "They listened to jazz records all night.",
    ]
    money = [
        "The bank raised interest rates again.",
        "Stock prices fell after the earnings report.",
        "Investors bought government bonds.",
        "The company reported record quarterly profit.",
        "Inflation reduced household savings.",
        "The currency lost value against the dollar.",
    ]
    rows = [(text, 1.0) for text in music] + [(text, 0.0) for text in money]
    frame = spark.createDataFrame(rows, "text string, label double").coalesce(1)

    embedded = EmbedText(outputCol="embedding").transform(frame).cache()
    assert isinstance(embedded.schema["embedding"].dataType, VectorUDT)
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=["embedding"], outputCol="features"),
            LogisticRegression(maxIter=50, regParam=0.01),
        ]
    )
    scored = pipeline.fit(embedded).transform(embedded)
    correct = scored.where("prediction = label").count()
    embedded.unpersist()
    assert correct == len(rows)
