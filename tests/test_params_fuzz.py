"""Bad input, fuzzed: every conf is either accepted and normalised, or rejected with a message naming the field;
no user-supplied string can make a raw file path escape the data directory."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from positioning.ingest.raw import RawLander, safe_component
from positioning.params import LS_PERIODS, SORT_KEYS, ConfError, RunConfig, dag_params

FIELDS = (
    "symbols",
    "lsPeriod",
    "sortBy",
    "alertLsThreshold",
    "includeBinance",
    "includeOkx",
    "includeBitget",
    "includeStrike",
    "includeOiChange24h",
)
SYMBOL = re.compile(r"^[A-Z0-9]{1,20}$")

any_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
symbol_like = st.one_of(
    st.text(alphabet="abcxyzABCXYZ0189", min_size=1, max_size=22),
    st.sampled_from(["../x", "'; drop table core.fact_positioning; --", "", " btc ", "BTC/USDT", "ÉTH", "a" * 21]),
    any_scalar,
)
conf_strategy = st.fixed_dictionaries(
    {},
    optional={
        "symbols": st.one_of(
            st.lists(symbol_like, max_size=8), st.lists(st.just("BTC"), min_size=199, max_size=260), any_scalar
        ),
        "lsPeriod": st.one_of(st.sampled_from(LS_PERIODS), any_scalar),
        "sortBy": st.one_of(st.sampled_from(SORT_KEYS), any_scalar),
        "alertLsThreshold": st.one_of(st.floats(min_value=-5, max_value=200), any_scalar),
        "includeBinance": any_scalar,
        "includeOkx": st.booleans(),
        "includeBitget": st.booleans(),
        "includeStrike": st.booleans(),
        "includeOiChange24h": any_scalar,
    },
)


def schema_validate(conf: dict) -> str | None:
    """What Airflow does before creating a run: merge conf into the DAG's params and validate the JSON schemas."""
    from airflow.sdk.definitions.param import ParamsDict, ParamValidationError

    params = ParamsDict(copy.deepcopy(dag_params()))
    try:
        for key, value in conf.items():
            params[key] = value
        params.validate()
    except (ParamValidationError, ValueError) as exc:
        return str(exc)
    return None


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conf_strategy)
def test_every_conf_is_accepted_and_normalised_or_rejected_naming_the_field(conf):
    schema_error = schema_validate(conf)
    if schema_error is not None:
        assert any(name in schema_error for name in FIELDS), schema_error
        return
    try:
        config = RunConfig.from_params({**{k: v for k, v in conf.items()}})
    except ConfError as exc:
        assert any(name in str(exc) for name in FIELDS), str(exc)
        return
    assert config.symbols and all(SYMBOL.fullmatch(s) for s in config.symbols)
    assert len(set(config.symbols)) == len(config.symbols)
    assert config.ls_period in LS_PERIODS and config.sort_by in SORT_KEYS
    assert 0 <= config.alert_ls_threshold <= 100


def test_lower_case_symbols_are_normalised():
    assert RunConfig.from_params({"symbols": ["btc", " Eth", "BTC"]}).symbols == ("BTC", "ETH")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_path_components_cannot_escape(value):
    component = safe_component(value)
    assert "/" not in component and "\\" not in component and component not in {"", ".", ".."}
    assert not component.startswith(".")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(venue=st.text(max_size=40), endpoint=st.text(max_size=40), run_id=st.text(max_size=60))
def test_raw_files_always_land_inside_the_data_directory(tmp_path, venue, endpoint, run_id):
    root = tmp_path / "raw"
    lander = RawLander(root, venue, datetime(2026, 11, 20, 12, tzinfo=UTC), run_id)
    path = lander.land(endpoint, {"status": 200}, b"{}")
    assert path.resolve().is_relative_to(root.resolve())
