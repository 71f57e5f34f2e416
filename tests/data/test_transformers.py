"""The scikit-learn contract for every transformer, then what each one computes."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from cairn.data.sun import sun_position
from cairn.data.transformers import (
    Arithmetic,
    CategoryEncoder,
    DateTimeParts,
    FeatureCross,
    FrequencyEncoder,
    HtmlStripper,
    InstanceKey,
    MissingImputer,
    OutlierClipper,
    Scaler,
    SpellingNormalizer,
    SunPosition,
    TextVectorizer,
    UnitConverter,
    strip_html,
)
from cairn.data.transformers.columns import DropColumns
from cairn.domain.errors import ApiError


def messy_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "height": ["5 ft 3 in", "160cm", "1.6 m", None, "170 cm", "6 ft"],
            "city": ["New York", "new york", "Boston", "boston ", "NYC", "Boston"],
            "price": [10.0, np.nan, 12.0, 11.0, 400.0, 9.0],
            "qty": [1, 2, 3, 4, 5, 6],
            "text": [
                "<p>Good <b>food</b></p>",
                "bad &amp; slow",
                "<script>x()</script>good",
                "ok",
                "good good",
                None,
            ],
            "when": pd.to_datetime(
                [
                    "2024-01-06 12:00",
                    "2024-01-07 08:00",
                    "2024-03-01 00:00",
                    "2024-06-21 16:00",
                    "2024-12-24 00:00",
                    "2024-02-29 00:00",
                ]
            ),
            "lat": [40.7] * 6,
            "lon": [-74.0] * 6,
        }
    )


TRANSFORMERS = [
    MissingImputer(["price"], "median", add_indicator=True),
    SpellingNormalizer(["city"], {"nyc": "New York"}),
    UnitConverter(["height"], "cm"),
    OutlierClipper(["price"]),
    FeatureCross(["city", "qty"]),
    FrequencyEncoder(["city"]),
    DateTimeParts(["when"], ["month", "dayofweek", "hour", "is_weekend"]),
    SunPosition("lat", "lon", "when"),
    Arithmetic("price", "qty", "ratio"),
    Arithmetic("price", "qty", "difference"),
    Scaler(["price", "qty"], "robust"),
    HtmlStripper(["text"]),
    TextVectorizer("text", "bow", 10),
    CategoryEncoder(["city"], "onehot"),
    CategoryEncoder(["city"], "ordinal"),
    InstanceKey(["city", "qty"]),
    DropColumns(["text"]),
]
IDS = [f"{type(t).__name__}-{i}" for i, t in enumerate(TRANSFORMERS)]


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=IDS)
def test_estimator_contract(transformer: object) -> None:
    name = type(transformer).__name__
    check_parameters_default_constructible(name, transformer)
    check_no_attributes_set_in_init(name, clone(transformer))
    check_get_params_invariance(name, transformer)
    check_set_params(name, clone(transformer))
    frame = messy_frame()
    original = frame.copy()
    estimator = clone(transformer)
    with pytest.raises(NotFittedError):
        estimator.transform(frame)
    assert estimator.fit(frame) is estimator
    assert frame.equals(original), "fit must not modify its input"
    learned = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]
    assert learned, "fitted state ends in _"
    first = estimator.transform(frame)
    assert frame.equals(original), "transform must not modify its input"
    assert len(first) == len(frame) and list(first.columns) == list(
        estimator.get_feature_names_out()
    )
    pd.testing.assert_frame_equal(first, estimator.transform(frame))
    restored = pickle.loads(pickle.dumps(estimator))
    pd.testing.assert_frame_equal(first, restored.transform(frame))
    pd.testing.assert_frame_equal(first, clone(transformer).fit_transform(frame))


def test_numeric_transformers_accept_arrays() -> None:
    array = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    out = Pipeline(
        [("impute", MissingImputer(strategy="mean")), ("scale", Scaler())]
    ).fit_transform(array)
    assert list(out.columns) == ["x0", "x1"]
    assert out["x0"].mean() == pytest.approx(0.0) and not out.isna().any().any()


def test_cleaning_transformers_values() -> None:
    frame = messy_frame()
    heights = UnitConverter(["height"], "cm").fit_transform(frame)["height"]
    assert heights[:3].tolist() == pytest.approx([160.02, 160.0, 160.0]) and np.isnan(heights[3])
    cities = SpellingNormalizer(["city"], {"nyc": "New York"}).fit_transform(frame)["city"]
    assert cities.tolist() == ["New York", "New York", "Boston", "Boston", "New York", "Boston"]
    imputed = MissingImputer(["price"], "median", add_indicator=True).fit_transform(frame)
    assert imputed.loc[1, "price"] == 11.0 and imputed["price_missing"].tolist() == [
        0,
        1,
        0,
        0,
        0,
        0,
    ]
    clipped = OutlierClipper(["price"]).fit(frame)
    assert clipped.transform(frame)["price"].max() < 400


def test_fitted_on_train_only_and_unknown_categories() -> None:
    train = pd.DataFrame({"c": ["a", "a", "b"], "x": [1.0, 2.0, 3.0]})
    serve = pd.DataFrame({"c": ["a", "zzz"], "x": [2.0, 100.0]})
    onehot = CategoryEncoder(["c"]).fit(train).transform(serve)
    assert onehot[["c=a", "c=b"]].to_numpy().tolist() == [[1, 0], [0, 0]]
    assert CategoryEncoder(["c"], "ordinal").fit(train).transform(serve)["c"].tolist() == [0, -1]
    assert FrequencyEncoder(["c"]).fit(train).transform(serve)["c_freq"].tolist() == [2.0, 0.0]
    minmax = Scaler(["x"], "minmax").fit(train).transform(serve)["x"]
    assert minmax.tolist() == [0.5, 49.5]
    zscore = Scaler(["x"]).fit(train).transform(train)["x"]
    assert zscore.mean() == pytest.approx(0) and zscore.std(ddof=0) == pytest.approx(1)


def test_text_html_and_keys() -> None:
    assert strip_html("<div>Tom &amp; <i>Jerry</i><style>p{}</style></div>") == "Tom & Jerry"
    frame = messy_frame()
    stripped = HtmlStripper(["text"]).fit_transform(frame)
    vectors = TextVectorizer("text", "tfidf", 5).fit(stripped)
    out = vectors.transform(
        pd.DataFrame({"text": ["good food", "unseen words"]}).assign(
            **{c: frame[c][:2] for c in frame if c != "text"}
        )
    )
    assert (
        "text_good" in out.columns and out.loc[1, "text_good"] == 0.0 and "text" not in out.columns
    )
    keys = InstanceKey(["city", "qty"]).fit_transform(frame)["key"]
    assert (
        keys.is_unique
        and keys.tolist() == InstanceKey(["city", "qty"]).fit_transform(frame)["key"].tolist()
    )
    with pytest.raises(ApiError, match="stable keys"):
        InstanceKey(kind="sequence").fit(frame)


def test_category_text_is_the_same_however_the_column_was_typed() -> None:
    """Fitted on nullable ints, applied to the float64 the same column becomes with gaps."""
    fitted = CategoryEncoder(["flight"]).fit(
        pd.DataFrame({"flight": pd.array([1545, 714, None], "Int64")})
    )
    applied = fitted.transform(pd.DataFrame({"flight": [1545.0, 714.0, float("nan")]}))
    assert applied[["flight=1545", "flight=714"]].to_numpy().tolist() == [[1, 0], [0, 1], [0, 0]]


def test_numeric_steps_refuse_text_columns() -> None:
    with pytest.raises(ApiError, match="hold text"):
        Scaler(["carrier"]).fit(pd.DataFrame({"carrier": ["UA", "AA"]}))


def test_datetime_parts_and_cross() -> None:
    frame = messy_frame()
    parts = DateTimeParts(["when"], ["month", "dayofweek", "hour", "is_weekend"]).fit_transform(
        frame
    )
    assert parts.loc[
        0, ["when_month", "when_dayofweek", "when_hour", "when_is_weekend"]
    ].tolist() == [1, 5, 12, 1]
    crossed = FeatureCross(["city", "qty"], name="cq").fit_transform(frame)["cq"]
    assert crossed[0] == "New York_x_1"


def test_sun_position_matches_known_geometry() -> None:
    # Equinox noon on the equator: the sun is overhead; sunrise is due east at the horizon.
    elevation, _ = sun_position(0.0, 0.0, "2020-03-20 12:07")
    assert elevation[0] == pytest.approx(90, abs=0.5)
    elevation, azimuth = sun_position(0.0, 0.0, "2020-03-20 06:07")
    assert elevation[0] == pytest.approx(0, abs=0.5) and azimuth[0] == pytest.approx(90, abs=0.5)
    # New York at the June solstice's solar noon: 90 - 40.7 + 23.44 degrees, due south.
    elevation, azimuth = sun_position(40.7, -74.0, "2013-06-21 16:57")
    assert elevation[0] == pytest.approx(72.74, abs=0.2) and azimuth[0] == pytest.approx(
        180, abs=1.5
    )
    # Midnight in winter: well below the horizon.
    elevation, _ = sun_position(40.7, -74.0, "2013-12-21 05:00")
    assert elevation[0] < -60
    frame = SunPosition("lat", "lon", "when").fit_transform(messy_frame())
    assert (
        frame["sun_elevation"].between(-90, 90).all() and frame["sun_azimuth"].between(0, 360).all()
    )
