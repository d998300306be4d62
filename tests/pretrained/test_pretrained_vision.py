import cv2
import numpy as np

from sparktrain import DetectFaces, ReadText, TagImage


def test_tags_of_the_packaged_sample_photos(image_frame, sample_photos):
    frame = image_frame([sample_photos["flower.jpg"], sample_photos["china.jpg"]])
    rows = TagImage(topK=5).transform(frame).orderBy("id").collect()

    flower, temple = (row.tags for row in rows)
    assert len(flower) == len(temple) == 5
    assert "daisy" in [tag.label for tag in flower]
    temple_words = {"bell tower", "monastery", "stupa", "palace", "church", "dome"}
    assert temple_words & {tag.label for tag in temple[:3]}
    for tags in (flower, temple):
        scores = [tag.score for tag in tags]
        assert scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1
    assert all(row.tags_error is None for row in rows)


def test_one_face_in_the_astronaut_photo(image_frame, astronaut_png, sample_photos):
    frame = image_frame([astronaut_png, sample_photos["flower.jpg"]])
    rows = DetectFaces().transform(frame).orderBy("id").collect()

    (face,) = rows[0].faces
    # Eileen Collins' face lies around x 170-270, y 60-160 of the 512 x 512 photo.
    assert 150 <= face.x <= 200
    assert 50 <= face.y <= 90
    assert 70 <= face.width <= 120
    assert face.width == face.height
    assert rows[1].faces == []
    assert all(row.faces_error is None for row in rows)


def test_ocr_reads_rendered_text_exactly(
    image_frame, text_png, rendered_text, sample_photos
):
    frame = image_frame([text_png, sample_photos["flower.jpg"]])
    rows = ReadText().transform(frame).orderBy("id").collect()

    result = rows[0].ocr
    assert result.text == rendered_text
    (line,) = result.lines
    assert line.text == rendered_text
    assert line.confidence > 0.9
    assert 0 <= line.x < 40
    assert 10 <= line.y < 40
    assert 400 < line.width < 500
    assert 50 < line.height < 100
    assert rows[1].ocr.text == ""
    assert rows[0].ocr_error is None


def test_corrupt_and_null_images_fail_alone(image_frame, astronaut_png):
    corrupt = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    frame = image_frame([corrupt, None, b"", astronaut_png])
    for transformer, output in (
        (TagImage(), "tags"),
        (DetectFaces(), "faces"),
        (ReadText(), "ocr"),
    ):
        rows = transformer.transform(frame).orderBy("id").collect()
        assert rows[0][output] is None
        assert "could not decode 48 bytes as an image" in rows[0][f"{output}_error"]
        assert [rows[i][output] for i in (1, 2)] == [None, None]
        assert [rows[i][f"{output}_error"] for i in (1, 2)] == [None, None]
        assert rows[3][output] is not None
        assert rows[3][f"{output}_error"] is None


def test_image_and_binary_file_sources(spark, image_folder, rendered_text):
    binary = spark.read.format("binaryFile").load(str(image_folder))
    faces = DetectFaces().transform(binary).collect()
    by_name = {row.path.rsplit("/", 1)[1]: row for row in faces}
    assert len(by_name["astronaut.png"].faces) == 1
    assert by_name["broken.jpg"].faces is None
    assert "could not decode" in by_name["broken.jpg"].faces_error

    images = spark.read.format("image").load(str(image_folder))
    with_null = images.union(spark.createDataFrame([(None,)], images.schema))
    found = DetectFaces(inputCol="image", outputCol="found").transform(with_null)
    rows = found.collect()
    (null_row,) = [row for row in rows if row.image is None]
    assert null_row.found is None
    assert null_row.found_error is None
    by_name = {row.image.origin.rsplit("/", 1)[1]: row for row in rows if row.image}
    assert len(by_name["astronaut.png"].found) == 1
    assert by_name["astronaut.png"].found_error is None
    assert by_name["broken.jpg"].found is None
    assert "Spark's image source could not decode" in by_name["broken.jpg"].found_error

    gray = spark.read.format("image").load(str(image_folder / "text.png"))
    assert gray.first().image.nChannels in (1, 3, 4)
    text = ReadText(inputCol="image").transform(gray).first()
    assert text.ocr.text == rendered_text


def test_ocr_joins_boxes_into_rows_in_reading_order(image_frame):
    image = np.full((200, 520, 3), 255, np.uint8)
    for text, bottom in (("Invoice 2026-12", 65), ("Total 42 EUR", 155)):
        cv2.putText(
            image, text, (10, bottom), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3
        )
    ok, encoded = cv2.imencode(".png", image)
    assert ok

    row = ReadText().transform(image_frame([encoded.tobytes()])).first()
    assert row.ocr.text == "Invoice 2026-12\nTotal 42 EUR"
    assert len(row.ocr.lines) >= 2
    tops = [line.y for line in row.ocr.lines]
    assert min(tops) < 80 < max(tops)
