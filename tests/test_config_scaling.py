"""The serving scaling settings come from CAIRN_* variables, with documented defaults."""

from __future__ import annotations

import pytest

from cairn.config import Settings


def test_scaling_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CAIRN_AUTOSCALE_TARGET_INFLIGHT",
        "CAIRN_AUTOSCALE_IDLE_SECONDS",
        "CAIRN_SERVING_MAX_INFLIGHT_PER_NODE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.autoscale_target_in_flight == 8
    assert settings.autoscale_idle_seconds == 120.0
    assert settings.serving_max_in_flight_per_node == 512


def test_scaling_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_AUTOSCALE_TARGET_INFLIGHT", "3")
    monkeypatch.setenv("CAIRN_AUTOSCALE_IDLE_SECONDS", "1.5")
    monkeypatch.setenv("CAIRN_SERVING_MAX_INFLIGHT_PER_NODE", "40")
    settings = Settings.from_env()
    assert settings.autoscale_target_in_flight == 3
    assert settings.autoscale_idle_seconds == 1.5
    assert settings.serving_max_in_flight_per_node == 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CAIRN_AUTOSCALE_TARGET_INFLIGHT", "0"),
        ("CAIRN_SERVING_MAX_INFLIGHT_PER_NODE", "-1"),
        ("CAIRN_AUTOSCALE_IDLE_SECONDS", "0"),
        ("CAIRN_AUTOSCALE_IDLE_SECONDS", "soon"),
    ],
)
def test_bad_scaling_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings.from_env()
