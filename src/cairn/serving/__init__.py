"""Model serving: framework loaders, prediction nodes and the manager that runs them."""

from cairn.serving.frameworks import detect_framework
from cairn.serving.local import predict_local
from cairn.serving.manager import DeployResult, ServingManager

__all__ = ["DeployResult", "ServingManager", "detect_framework", "predict_local"]
