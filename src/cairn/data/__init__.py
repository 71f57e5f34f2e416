"""Data preparation: sources, joins, cleaning, splitting, features and preprocessing.

DuckDB does the heavy lifting on named tables in a `Workspace`; the fitted steps are
scikit-learn transformers that form one pipeline saved with the dataset for serving.
"""

from cairn.data.artifact import PreparationArtifact, load_preparation
from cairn.data.datasets import export_nycflights13
from cairn.data.joins import join, normalize_column_name, union
from cairn.data.recipe import Recipe, RecipeError, load_recipe
from cairn.data.runner import PrepareResult, build_pipeline, prepare, read_table, rehearse
from cairn.data.sources import SourceSpec, load_source, sniff_csv
from cairn.data.split import SplitFractions, hash_fraction, split, split_frame
from cairn.data.sun import sun_position
from cairn.data.workspace import StepReport, Workspace

__all__ = [
    "PrepareResult",
    "PreparationArtifact",
    "Recipe",
    "RecipeError",
    "SourceSpec",
    "SplitFractions",
    "StepReport",
    "Workspace",
    "build_pipeline",
    "export_nycflights13",
    "hash_fraction",
    "join",
    "load_preparation",
    "load_recipe",
    "load_source",
    "normalize_column_name",
    "prepare",
    "read_table",
    "rehearse",
    "sniff_csv",
    "split",
    "split_frame",
    "sun_position",
    "union",
]
