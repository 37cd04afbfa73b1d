"""One rule per knob: a value the flag accepts is one the config accepts, and the other way round
(here: distill's --mlm-prob, whose flag took 1.0 that DistillConfig.validate refuses)."""

import argparse

import pytest

from distill.cli import add_pretrain_arguments
from distill.config import DistillConfig
from pocketbert.common import UsageError


def _flag_accepts(value: str) -> bool:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_pretrain_arguments(p)
    action = next(a for a in p._actions if "--mlm-prob" in a.option_strings)
    try:
        action.type(value)
    except (argparse.ArgumentTypeError, ValueError):
        return False
    return True


def _config_accepts(value: float) -> bool:
    try:
        DistillConfig(mlm_prob=value).validate()
    except UsageError:
        return False
    return True


@pytest.mark.parametrize("value", ["0", "0.15", "0.999", "1.0", "1.5", "-0.1"])
def test_mlm_prob_flag_and_config_agree(value):
    assert _flag_accepts(value) == _config_accepts(float(value)), value
