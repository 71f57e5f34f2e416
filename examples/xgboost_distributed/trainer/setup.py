"""The trainer package Cairn (like AI Platform) builds and runs on every replica of the job."""

from setuptools import find_packages, setup

setup(
    name="xgboost-distributed-trainer",
    version="0.1.0",
    packages=find_packages(),
    # XGBoost 2 or later: its collective and tracker API (Cairn's own is 3.2).
    install_requires=["xgboost>=2", "numpy"],
)
