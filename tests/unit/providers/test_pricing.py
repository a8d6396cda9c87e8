"""The price table is data; it stays consistent with the models the SDKs know."""

from __future__ import annotations

import typing

import pytest

from supervisor_lib.model_facts import load_prices


def _sdk_models(provider: str) -> set[str]:
    if provider == "anthropic":
        from anthropic.types.model import Model
    else:
        from openai.types.shared.chat_model import ChatModel as Model

    names: set[str] = set()
    for arg in typing.get_args(Model):
        names |= {a for a in typing.get_args(arg) if isinstance(a, str)} or ({arg} if isinstance(arg, str) else set())
    return names


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_current_models_exist_in_the_sdk(provider: str) -> None:
    table = load_prices().models
    current = {name for name, p in table.items() if p.provider == provider and not p.deprecated}
    assert current, f"no {provider} models priced"
    assert current <= _sdk_models(provider), current - _sdk_models(provider)


def test_prices_are_sane() -> None:
    for name, price in load_prices().models.items():
        assert 0 < price.input <= price.output, name
        assert 0 <= price.cache_read <= price.input, name
