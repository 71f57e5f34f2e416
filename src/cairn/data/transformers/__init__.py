"""scikit-learn-compatible transformers over DataFrames; they chain into one saved pipeline."""

from cairn.data.transformers.base import FrameTransformer, as_frame
from cairn.data.transformers.cleaning import (
    MissingImputer,
    OutlierClipper,
    SpellingNormalizer,
    UnitConverter,
)
from cairn.data.transformers.features import (
    Arithmetic,
    DateTimeParts,
    FeatureCross,
    FrequencyEncoder,
    SunPosition,
)
from cairn.data.transformers.preprocessing import (
    CategoryEncoder,
    HtmlStripper,
    InstanceKey,
    Scaler,
    TextVectorizer,
    strip_html,
)

__all__ = [
    "Arithmetic",
    "CategoryEncoder",
    "DateTimeParts",
    "FeatureCross",
    "FrameTransformer",
    "FrequencyEncoder",
    "HtmlStripper",
    "InstanceKey",
    "MissingImputer",
    "OutlierClipper",
    "Scaler",
    "SpellingNormalizer",
    "SunPosition",
    "TextVectorizer",
    "UnitConverter",
    "as_frame",
    "strip_html",
]
