import pytest

from sparktrain._extras import require
from sparktrain.errors import MissingExtraError


def test_installed_module_is_returned():
    assert require("json", extra="dev", purpose="reading").dumps([]) == "[]"


def test_missing_module_names_the_extra():
    with pytest.raises(
        MissingExtraError,
        match=r"LightGBM learners needs .*'no_such_pkg'.*"
        r"pip install 'sparktrain\[automl\]'",
    ):
        require("no_such_pkg", extra="automl", purpose="LightGBM learners")
