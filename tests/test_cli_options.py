"""The command line's options: each bound accepted, one past it refused as a one-line usage
error with exit status 2 (1 is compare's FAILED), before anything is computed."""

import pytest

from refconv import cli
from refconv.data import MIN_SIZE


def parse(*argv):
    return cli._parser().parse_args(list(argv))


@pytest.mark.parametrize("option, low, high", [("--timesteps", 1, 50), ("--size", MIN_SIZE, 256),
                                               ("--seed", 0, 2**32 - 1)])
def test_demo_options_take_their_bounds_and_refuse_one_past(option, low, high, capsys):
    dest = option[2:]
    assert getattr(parse("demo", option, str(low)), dest) == low
    assert getattr(parse("demo", option, str(high)), dest) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(SystemExit) as raised:
            parse("demo", option, str(bad))
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert option in err and f"{low} to {high}" in err and repr(str(bad)) in err


@pytest.mark.parametrize("option", ["--rtol", "--atol"])
def test_tolerances_are_finite_and_not_negative(option, capsys):
    assert getattr(parse("compare", "a", "b", option, "0"), option[2:]) == 0.0
    assert getattr(parse("compare", "a", "b", option, "2.5e-3"), option[2:]) == 2.5e-3
    for bad in ("-1e-300", "-1", "nan", "inf", "-inf", "x"):
        with pytest.raises(SystemExit) as raised:
            parse("compare", "a", "b", f"{option}={bad}")   # =: a leading minus is a value
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and option in err
        assert "expected a finite number >= 0" in err


def test_a_usage_error_is_one_line_and_status_2_on_every_command(capsys):
    for argv in (["nope"], ["demo", "--nope"], ["compare", "a"], ["golden"]):
        with pytest.raises(SystemExit) as raised:
            cli.main(argv)
        assert raised.value.code == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--help" in err, (argv, err)
    assert cli.main([]) == 2
