"""XGBoost's legacy binary model format, read in pure Python and numpy.

Runtime 2.11 shipped XGBoost 1.7 (earlier runtimes 0.90 to 1.x), where
`booster.save_model('model.bst')` wrote XGBoost's own binary format. XGBoost 2.1 dropped that
format and XGBoost 3 (Cairn's) cannot read it. This module reads the binary layout (learner
parameters, gbtree/dart/gblinear model, trees of `RTreeNode` + `RTreeNodeStat`, `tree_info`,
attributes) and writes XGBoost's JSON model schema (`doc/model.schema`) as XGBoost 1.7 would
have written it. No old XGBoost is downloaded or run, and no native code touches the file
before it has been validated.

The conversion is checked before the model serves: the reader also evaluates the legacy
trees itself (the original's margins, computed from the binary's own nodes, with XGBoost's
float32 split comparisons and default directions for missing values) on synthetic rows built
around every split threshold, and the node compares them with XGBoost 3's margins for the
converted model (`loaders.xgboost`). The reader itself is tested against files written by a
real XGBoost 1.7.6 (`tests/serving/test_legacy_models.py`).

`serving.legacy.prepare_legacy_model` converts at deploy time and writes the result under
`.cairn/` in the version's copy (`write_conversion`); the loader uses it when it is current
(`load_conversion`), else converts in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONVERTED_DIR = ".cairn"
# The JSON written follows XGBoost 1.7.6's schema whatever version wrote the binary (older
# ones are brought to it, e.g. base_score), so it says so: XGBoost 3 warns about JSON models
# older than 1.6 and announces it will stop reading them.
JSON_SCHEMA_VERSION = (1, 7, 6)
SYNTHETIC_ROWS = 256
# Relative to the largest margin the model can give (LegacyModel.scale): XGBoost adds
# float32 leaves in its own order, the reference adds them in float64.
CHECK_TOLERANCE = 1e-5

_BINF = b"binf"
_LEARNER_PARAM_BYTES = 136
_GBTREE_PARAM_BYTES = 160
_GBLINEAR_PARAM_BYTES = 136
_TREE_PARAM_BYTES = 148
_NODE = np.dtype(
    [("parent", "<i4"), ("cleft", "<i4"), ("cright", "<i4"), ("sindex", "<u4"), ("info", "<f4")]
)
_STAT = np.dtype(
    [("loss_chg", "<f4"), ("sum_hess", "<f4"), ("base_weight", "<f4"), ("leaf_count", "<i4")]
)
_INDEX_MASK = (1 << 31) - 1
_MAX_NAME = 256
_MAX_ATTRIBUTE = 64 * 1024 * 1024

# Objectives whose base_score is a probability or a mean: ProbToMargin (and its inverse, for
# XGBoost < 1.0, which stored the margin).
_LOGIT = {"binary:logistic", "reg:logistic", "binary:logitraw"}
_LOG = {"count:poisson", "reg:gamma", "reg:tweedie", "survival:cox", "survival:aft"}
# What XGBoost 1.x wrote as an objective's configuration, for files from XGBoost < 1.0,
# which did not save it.
_REG_LOSS = {"reg_loss_param": {"scale_pos_weight": "1"}}
_OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "reg:squarederror": _REG_LOSS,
    "reg:squaredlogerror": _REG_LOSS,
    "reg:logistic": _REG_LOSS,
    "binary:logistic": _REG_LOSS,
    "binary:logitraw": _REG_LOSS,
    "reg:pseudohubererror": _REG_LOSS,
    "binary:hinge": {},
    "reg:gamma": {},
    "reg:tweedie": {"tweedie_regression_param": {"tweedie_variance_power": "1.5"}},
}


class LegacyFormatError(ValueError):
    """The file is not a readable legacy binary model; the text says where it broke."""


# ----- reading the binary format ----------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.where = "the learner parameters"

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise LegacyFormatError(
                f"the file ends after {len(self.data)} bytes, inside {self.where} "
                f"(needed {size} bytes at byte {self.at}); it is truncated or not a model"
            )
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def array(self, dtype: np.dtype[Any] | str, count: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(self.take(dtype.itemsize * count), dtype=dtype).copy()

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self, limit: int = _MAX_NAME) -> bytes:
        size = self.u64()
        if size > limit or size > len(self.data) - self.at:
            raise LegacyFormatError(
                f"{self.where} holds a string of {size} bytes at byte {self.at - 8}, "
                "more than the file has; it is corrupt or not a model"
            )
        return self.take(size)

    def name(self) -> str:
        raw = self.string()
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not text or not text.replace(":", "").replace("_", "").replace("-", "").isalnum():
            raise LegacyFormatError(
                f"{self.where} should be a name such as 'gbtree' or 'binary:logistic' at "
                f"byte {self.at - len(raw)}, but holds {raw[:40]!r}; the file is corrupt or "
                "not an XGBoost model"
            )
        return text


@dataclass
class LegacyTree:
    nodes: np.ndarray  # _NODE records
    stats: np.ndarray  # _STAT records
    num_feature: int
    num_deleted: int

    def is_leaf(self) -> np.ndarray:
        return np.asarray(self.nodes["cleft"] == -1)


@dataclass
class LegacyModel:
    """What a legacy binary file holds, enough to write XGBoost's JSON schema."""

    major_version: int
    minor_version: int
    base_score: float  # as XGBoost >= 1.0 stores it: in the objective's output space
    num_feature: int
    num_class: int
    num_target: int
    boost_from_average: int
    objective: dict[str, Any]
    booster: str  # gbtree, dart or gblinear
    trees: list[LegacyTree] = field(default_factory=list)
    tree_info: list[int] = field(default_factory=list)
    num_parallel_tree: int = 1
    weight_drop: list[float] = field(default_factory=list)
    linear_weights: np.ndarray | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def objective_name(self) -> str:
        return str(self.objective["name"])

    @property
    def num_groups(self) -> int:
        return max(self.num_class, 1)

    @property
    def written_by(self) -> str:
        if self.major_version == 0:
            return "XGBoost < 1.0"
        return f"XGBoost {self.major_version}.{self.minor_version}"

    def base_margin(self) -> float:
        """ProbToMargin(base_score), as XGBoost applies it before adding the trees."""
        name = self.objective_name
        if name in _LOGIT:
            return math.log(self.base_score / (1.0 - self.base_score))
        if name in _LOG:
            return math.log(self.base_score)
        return self.base_score

    # -- writing ----------------------------------------------------------------------------

    def to_json(self, *, with_trees: bool = True) -> dict[str, Any]:
        """The model in XGBoost's JSON schema, as XGBoost 1.7's `save_model('x.json')`."""
        learner = {
            "attributes": dict(sorted(self.attributes.items())),
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": self._booster_json(with_trees),
            "learner_model_param": {
                "base_score": repr(float(np.float32(self.base_score))),
                "boost_from_average": str(self.boost_from_average),
                "num_class": str(self.num_class),
                "num_feature": str(self.num_feature),
                "num_target": str(self.num_target),
            },
            "objective": self.objective,
        }
        return {"learner": learner, "version": list(JSON_SCHEMA_VERSION)}

    def json_bytes(self) -> bytes:
        """`to_json()` encoded, one tree at a time: a tree's Python lists take ~10 times its
        binary size, so building them all at once would cost ~10x the file in memory."""
        text = json.dumps(self.to_json(with_trees=False), separators=(",", ":"))
        # Keys are unique and a string value's quotes are escaped: this is the trees' list.
        head, found, tail = text.partition('"trees":[]')
        assert found or self.booster == "gblinear", "a tree model has a list of trees"
        out = io.BytesIO()
        out.write(head.encode())
        if found:
            out.write(b'"trees":[')
            for index, tree in enumerate(self.trees):
                if index:
                    out.write(b",")
                out.write(json.dumps(_tree_json(index, tree), separators=(",", ":")).encode())
            out.write(b"]")
        out.write(tail.encode())
        return out.getvalue()

    def _booster_json(self, with_trees: bool) -> dict[str, Any]:
        if self.booster == "gblinear":
            assert self.linear_weights is not None
            weights = self.linear_weights.astype(np.float32).tolist()
            return {"name": "gblinear", "model": {"boosted_rounds": 0, "weights": weights}}
        model = {
            "gbtree_model_param": {
                "num_parallel_tree": str(self.num_parallel_tree),
                "num_trees": str(len(self.trees)),
                "size_leaf_vector": "0",
            },
            "tree_info": list(self.tree_info),
            "trees": [_tree_json(i, tree) for i, tree in enumerate(self.trees)]
            if with_trees
            else [],
        }
        if self.booster == "dart":
            return {
                "name": "dart",
                "gbtree": {"name": "gbtree", "model": model},
                "weight_drop": list(self.weight_drop),
            }
        return {"name": "gbtree", "model": model}

    # -- the original's predictions -----------------------------------------------------------

    def margins(self, rows: np.ndarray) -> np.ndarray:
        """(rows, groups) margins computed from the binary's own trees, without XGBoost."""
        x = np.asarray(rows, dtype=np.float32)
        out = np.full((x.shape[0], self.num_groups), self.base_margin(), dtype=np.float64)
        if self.booster == "gblinear":
            assert self.linear_weights is not None
            groups = self.num_groups
            weights = self.linear_weights.astype(np.float64)
            matrix = weights[: self.num_feature * groups].reshape(self.num_feature, groups)
            out += np.nan_to_num(x.astype(np.float64), nan=0.0) @ matrix
            out += weights[self.num_feature * groups :]
            return out
        drop = self.weight_drop if self.booster == "dart" else [1.0] * len(self.trees)
        for tree, group, weight in zip(self.trees, self.tree_info, drop, strict=True):
            out[:, group] += weight * _leaf_values(tree, x).astype(np.float64)
        return out

    def scale(self) -> float:
        """Largest possible |margin|: what the check's tolerance is relative to."""
        total = abs(self.base_margin())
        if self.linear_weights is not None:
            return total + float(np.abs(self.linear_weights).sum())
        for tree in self.trees:
            leaves = tree.nodes["info"][tree.is_leaf()]
            total += float(np.abs(leaves).max()) if leaves.size else 0.0
        return total

    def synthetic_rows(self, count: int = SYNTHETIC_ROWS) -> np.ndarray:
        """Rows that reach both sides of every split and the missing-value directions."""
        rng = np.random.default_rng(20260)
        width = max(self.num_feature, 1)
        thresholds: list[list[float]] = [[] for _ in range(width)]
        for tree in self.trees:
            inner = ~tree.is_leaf()
            for feature, condition in zip(
                (tree.nodes["sindex"][inner] & _INDEX_MASK).tolist(),
                tree.nodes["info"][inner].tolist(),
                strict=True,
            ):
                if feature < width:
                    thresholds[feature].append(condition)
        rows = rng.normal(size=(count, width)).astype(np.float32)
        for feature, values in enumerate(thresholds):
            if not values:
                continue
            picks = np.asarray(values, dtype=np.float32)[rng.integers(len(values), size=count)]
            # At the threshold (goes right), a step below (left) and a step above.
            steps = rng.integers(-1, 2, size=count)
            below = np.nextafter(picks, np.float32(-np.inf))
            above = np.nextafter(picks, np.float32(np.inf))
            chosen = np.where(steps < 0, below, np.where(steps > 0, above, picks))
            use = rng.random(count) < 0.8
            rows[use, feature] = chosen[use]
        rows[rng.random(rows.shape) < 0.1] = np.nan
        rows[0, :] = np.nan
        return rows


def _leaf_values(tree: LegacyTree, x: np.ndarray) -> np.ndarray:
    nodes = tree.nodes
    left, right = nodes["cleft"], nodes["cright"]
    feature = (nodes["sindex"] & _INDEX_MASK).astype(np.int64)
    default_left = (nodes["sindex"] >> 31).astype(bool)
    condition = nodes["info"]
    position = np.zeros(x.shape[0], dtype=np.int64)
    rows = np.arange(x.shape[0])
    for _ in range(len(nodes) + 1):
        active = left[position] != -1
        if not active.any():
            return np.asarray(condition[position])
        at = position[active]
        values = x[rows[active], np.minimum(feature[at], x.shape[1] - 1)]
        values = np.where(feature[at] < x.shape[1], values, np.float32(np.nan))
        go_left = np.where(np.isnan(values), default_left[at], values < condition[at])
        position[active] = np.where(go_left, left[at], right[at])
    raise LegacyFormatError("a tree has a cycle; the file is corrupt")


def _tree_json(index: int, tree: LegacyTree) -> dict[str, Any]:
    nodes, stats = tree.nodes, tree.stats
    count = len(nodes)
    return {
        "base_weights": stats["base_weight"].tolist(),
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": (nodes["sindex"] >> 31).astype(np.int64).tolist(),
        "id": index,
        "left_children": nodes["cleft"].tolist(),
        "loss_changes": stats["loss_chg"].tolist(),
        "parents": (nodes["parent"].view(np.uint32) & _INDEX_MASK).astype(np.int64).tolist(),
        "right_children": nodes["cright"].tolist(),
        "split_conditions": nodes["info"].tolist(),
        "split_indices": (nodes["sindex"] & _INDEX_MASK).astype(np.int64).tolist(),
        "split_type": [0] * count,
        "sum_hessian": stats["sum_hess"].tolist(),
        "tree_param": {
            "num_deleted": str(tree.num_deleted),
            "num_feature": str(tree.num_feature),
            "num_nodes": str(count),
            "size_leaf_vector": "0",
        },
    }


def is_legacy_binary(head: bytes) -> bool:
    """True when a file's first bytes are not JSON or UBJSON (both open with '{')."""
    stripped = head.lstrip(b" \t\r\n")
    return bool(stripped) and not stripped.startswith(b"{")


def read_legacy_model(data: bytes) -> LegacyModel:
    """Parse a legacy binary XGBoost model; LegacyFormatError says what is wrong with it."""
    if data.startswith(b"bs64"):
        raise LegacyFormatError(
            "it is in XGBoost's base64 text format, which XGBoost dropped before 1.0"
        )
    if data.startswith(_BINF):
        data = data[len(_BINF) :]
    reader = _Reader(data)
    (
        base_score,
        num_feature,
        num_class,
        extra_attrs,
        _eval_metrics,
        major,
        minor,
        num_target,
        boost_from_average,
    ) = struct.unpack("<fIiiiIIIi", reader.take(_LEARNER_PARAM_BYTES)[:36])
    if not (0 <= num_class < 1_000_000 and num_feature < 1 << 31 and major < 100):
        raise LegacyFormatError(
            f"its learner parameters are implausible (num_class {num_class}, num_feature "
            f"{num_feature}, version {major}.{minor}); the file is corrupt or not a model"
        )
    reader.where = "the objective's name"
    objective_name = reader.name()
    reader.where = "the booster's name"
    booster = reader.name()
    if booster not in ("gbtree", "dart", "gblinear"):
        raise LegacyFormatError(f"its booster '{booster}' is not gbtree, dart or gblinear")
    model = LegacyModel(
        major_version=major,
        minor_version=minor,
        base_score=float(base_score),
        num_feature=int(num_feature),
        num_class=int(num_class),
        num_target=int(num_target) or 1,
        boost_from_average=int(boost_from_average) if major >= 1 else 1,
        objective={"name": objective_name},
        booster=booster,
    )
    if booster == "gblinear":
        _read_gblinear(reader, model)
    else:
        _read_gbtree(reader, model)
    attributes: dict[str, str] = {}
    if extra_attrs:
        reader.where = "the attributes"
        for _ in range(reader.u64()):
            key = reader.string(_MAX_ATTRIBUTE).decode("utf-8", "replace")
            attributes[key] = reader.string(_MAX_ATTRIBUTE).decode("utf-8", "replace")
    if reader.at < len(data) and objective_name == "count:poisson":
        # XGBoost < 1.0 appended Poisson regression's max_delta_step after the attributes.
        reader.where = "Poisson's max_delta_step"
        attributes.setdefault("count_poisson_max_delta_step", reader.string().decode())
    if reader.at != len(data):
        raise LegacyFormatError(
            f"{len(data) - reader.at} unexpected bytes follow the model at byte {reader.at}; "
            "the file is corrupt or not an XGBoost model"
        )
    _finish_objective(model, attributes)
    return model


def _read_gbtree(reader: _Reader, model: LegacyModel) -> None:
    reader.where = "the gbtree parameters"
    num_trees, num_parallel_tree = struct.unpack("<ii", reader.take(_GBTREE_PARAM_BYTES)[:8])
    if num_trees < 0 or num_trees * (_TREE_PARAM_BYTES + 36) > len(reader.data):
        raise LegacyFormatError(
            f"it claims {num_trees} trees, more than its {len(reader.data)} bytes can hold; "
            "the file is corrupt or not a model"
        )
    model.num_parallel_tree = max(int(num_parallel_tree), 1)
    for index in range(num_trees):
        reader.where = f"tree {index} of {num_trees}"
        _, num_nodes, num_deleted, _, tree_features, leaf_vector = struct.unpack(
            "<6i", reader.take(_TREE_PARAM_BYTES)[:24]
        )
        if leaf_vector != 0:
            raise LegacyFormatError(f"tree {index} has leaf vectors, which XGBoost 1.x never wrote")
        if not 0 < num_nodes <= (len(reader.data) - reader.at) // (_NODE.itemsize + 16):
            raise LegacyFormatError(
                f"tree {index} of {num_trees} claims {num_nodes} nodes at byte {reader.at}, "
                "more than the rest of the file holds; it is truncated or corrupt"
            )
        nodes = reader.array(_NODE, num_nodes)
        stats = reader.array(_STAT, num_nodes)
        _check_tree(index, nodes)
        model.trees.append(LegacyTree(nodes, stats, int(tree_features), int(num_deleted)))
    reader.where = "the trees' groups (tree_info)"
    model.tree_info = reader.array("<i4", num_trees).tolist() if num_trees else []
    if any(not 0 <= group < model.num_groups for group in model.tree_info):
        raise LegacyFormatError(
            f"a tree belongs to a class outside 0..{model.num_groups - 1}; the file is corrupt"
        )
    if model.booster == "dart":
        reader.where = "dart's tree weights"
        count = reader.u64() if num_trees else 0
        if count != num_trees:
            raise LegacyFormatError(f"dart has {count} tree weights for {num_trees} trees")
        model.weight_drop = reader.array("<f4", count).astype(np.float64).tolist()


def _check_tree(index: int, nodes: np.ndarray) -> None:
    count = len(nodes)
    left, right = nodes["cleft"], nodes["cright"]
    inner = left != -1
    bad = (left[inner] <= 0) | (left[inner] >= count) | (right[inner] <= 0)
    bad |= right[inner] >= count
    if bad.any() or (right[~inner] != -1).any():
        raise LegacyFormatError(
            f"tree {index} links to nodes outside its {count} nodes; the file is corrupt"
        )


def _read_gblinear(reader: _Reader, model: LegacyModel) -> None:
    reader.where = "the gblinear parameters"
    reader.take(_GBLINEAR_PARAM_BYTES)
    reader.where = "the gblinear weights"
    count = reader.u64()
    expected = (model.num_feature + 1) * model.num_groups
    if count != expected:
        raise LegacyFormatError(
            f"gblinear holds {count} weights, but {model.num_feature} features and "
            f"{model.num_groups} groups need {expected}; the file is corrupt"
        )
    model.linear_weights = reader.array("<f4", count)


def _finish_objective(model: LegacyModel, attributes: dict[str, str]) -> None:
    """Move the objective (and Cairn-irrelevant bookkeeping) out of the attributes."""
    name = model.objective_name
    if name == "reg:linear":
        name = "reg:squarederror"
    saved = attributes.pop("objective", None)
    poisson_step = attributes.pop("count_poisson_max_delta_step", None)
    attributes.pop("metrics", None)
    for key in [key for key in attributes if key.startswith("SAVED_PARAM_")]:
        attributes.pop(key)
    model.attributes = attributes
    if saved is not None:
        try:
            model.objective = json.loads(saved)
        except json.JSONDecodeError:
            raise LegacyFormatError("its saved objective is not valid JSON") from None
        return
    # XGBoost < 1.0: no saved objective, base_score stored as a margin.
    if name.startswith("multi:"):
        config: dict[str, Any] = {"softmax_multiclass_param": {"num_class": str(model.num_class)}}
    elif name == "count:poisson":
        step = poisson_step or "0.7"
        config = {"poisson_regression_param": {"max_delta_step": step}}
    elif name in _OBJECTIVE_DEFAULTS:
        config = _OBJECTIVE_DEFAULTS[name]
    else:
        raise LegacyFormatError(
            f"it was written by XGBoost < 1.0 with objective '{name}', which Cairn cannot "
            "convert (supported: regression, logistic, Poisson, gamma, Tweedie, multi-class)"
        )
    model.objective = {"name": name, **json.loads(json.dumps(config))}
    if model.major_version == 0:
        margin = model.base_score
        if name in _LOGIT:
            model.base_score = 1.0 / (1.0 + math.exp(-margin))
        elif name in _LOG:
            model.base_score = math.exp(margin)


# ----- the converted model and its check --------------------------------------------------


@dataclass
class Conversion:
    """A legacy model converted to JSON, with the original's margins on synthetic rows."""

    source: str  # the legacy file's name
    written_by: str
    model_json: bytes
    rows: np.ndarray
    margins: np.ndarray
    tolerance: float
    prepared: bool = False  # read from prepare_legacy_model's files, not converted now

    def mismatch(self, margins: np.ndarray) -> str | None:
        """Why `margins` (from the converted model) differ from the original's, or None."""
        got = np.asarray(margins, dtype=np.float64).reshape(len(self.rows), -1)
        if got.shape != self.margins.shape:
            return f"the converted model gives {got.shape[1]} outputs per row, not {self.margins.shape[1]}"
        difference = float(np.max(np.abs(got - self.margins))) if got.size else 0.0
        if not difference <= self.tolerance:
            return (
                f"on {len(self.rows)} synthetic rows the converted model's margins differ from "
                f"the original's by up to {difference:.3g} (allowed {self.tolerance:.3g})"
            )
        return None


def convert(data: bytes, source: str = "model.bst") -> Conversion:
    model = read_legacy_model(data)
    rows = model.synthetic_rows()
    return Conversion(
        source=source,
        written_by=model.written_by,
        model_json=model.json_bytes(),
        rows=rows,
        margins=model.margins(rows),
        tolerance=CHECK_TOLERANCE * max(1.0, model.scale()),
    )


def converted_paths(model_file: Path) -> tuple[Path, Path]:
    """Where prepare_legacy_model writes the converted model and its check for `model_file`."""
    folder = model_file.parent / CONVERTED_DIR
    return folder / f"{model_file.name}.json", folder / f"{model_file.name}.check.npz"


def load_conversion(model_file: Path) -> Conversion:
    """The prepared conversion of `model_file` when it is current, else one made now."""
    data = model_file.read_bytes()
    return prepared_conversion(model_file, data) or convert(data, model_file.name)


def prepared_conversion(model_file: Path, data: bytes) -> Conversion | None:
    converted, check = converted_paths(model_file)
    try:
        with np.load(check, allow_pickle=False) as saved:
            if str(saved["source_sha256"]) != hashlib.sha256(data).hexdigest():
                return None
            return Conversion(
                source=model_file.name,
                written_by=str(saved["written_by"]),
                model_json=converted.read_bytes(),
                rows=saved["rows"],
                margins=saved["margins"],
                tolerance=float(saved["tolerance"]),
                prepared=True,
            )
    except (OSError, KeyError, ValueError):
        return None  # not prepared, or for another file


def write_conversion(model_file: Path, data: bytes, conversion: Conversion) -> None:
    """Write the JSON, then the check naming its source: a current check means both are whole.

    Each file is replaced atomically, so a node starting meanwhile reads old or new.
    """
    converted, check = converted_paths(model_file)
    converted.parent.mkdir(exist_ok=True)
    staged = converted.with_name(converted.name + ".tmp")
    staged.write_bytes(conversion.model_json)
    os.replace(staged, converted)
    staged = check.with_name(check.name + ".tmp")
    with staged.open("wb") as handle:
        np.savez(
            handle,
            source_sha256=np.array(hashlib.sha256(data).hexdigest()),
            written_by=np.array(conversion.written_by),
            rows=conversion.rows,
            margins=conversion.margins,
            tolerance=np.array(conversion.tolerance),
        )
    os.replace(staged, check)


def legacy_fix(name: str) -> str:
    return (
        f"If {name} opens in the XGBoost that wrote it, re-save it there as JSON "
        f"(xgboost.Booster(model_file='{name}').save_model('model.json')) and deploy "
        "model.json instead."
    )
