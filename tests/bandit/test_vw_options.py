"""``vw_args`` never touches a file: every option VW knows, with a path for its value, in every form.

VW reads and writes files for some options (``-f``, ``-p``, ``-r``, ``--output_feature_regularizer_text``,
a bare word as data). SendLab parses ``vw_args`` against its own allowlist before VW sees it. These
tests take VW's whole option list from its ``--help``, give each option a path in a watched folder (in
each of the forms ``--opt PATH``, ``--opt=PATH``, ``-xPATH``, ``-x PATH``), run the spec check and, when
the spec is accepted, build the policy, and assert through inotify that nothing in the folder was
created, opened, read, written or truncated.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandit.policy import PolicyError
from bandit.registry import make_policy
from bandit.vw_options import name_to_option, parse_vw_args, short_to_name
from experiments.spec import SpecError, parse_spec

IN_ALL_EVENTS = 0xFFF  # access, modify, attrib, close, open, move, create, delete
IN_NONBLOCK = os.O_NONBLOCK


def _vw_option_list() -> list[str]:
    """Every option (``-x`` and ``--name``) that VW's ``--help`` lists, over all its reductions."""
    script = "import vowpalwabbit; vowpalwabbit.Workspace(arg_list=['--help'])"
    text = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False).stdout
    options = set()
    for line in text.splitlines():
        match = re.match(r"\s+((?:-\w, )?--[\w-]+)", line)
        if match:
            options.update(part.strip() for part in match.group(1).split(","))
    return sorted(options)


VW_OPTIONS = _vw_option_list()


class Watch:
    """inotify on one folder: ``events()`` returns how many events happened there since the last call."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK)
        assert self.fd >= 0, "inotify_init1 failed"
        assert libc.inotify_add_watch(self.fd, str(folder).encode(), IN_ALL_EVENTS) >= 0

    def events(self) -> int:
        count = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return count
            count += len(data)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Watch]]:
    """A folder holding one file, the working directory (so relative paths land in it), and its watch."""
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "store.db").write_bytes(b"precious")
    monkeypatch.chdir(folder)
    watch = Watch(folder)
    watch.events()
    yield folder, watch
    watch.close()


def _spec(vw_args: str) -> dict:
    return {
        "key": "probe",
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "design": {"type": "contextual", "policy": "vw", "vw_args": vw_args, "context": ["segment"]},
        "default": {"subject": "a"},
    }


def _try(vw_args: str) -> bool:
    """The spec check, and the policy built when the spec is accepted; True when accepted."""
    try:
        parse_spec(_spec(vw_args))
    except SpecError:
        return False
    make_policy("vw", 2, options={"vw_args": vw_args}).probabilities([{"segment": "x"}])
    return True


def _forms(option: str, path: str) -> list[str]:
    if option.startswith("--"):
        return [f"{option} {path}", f"{option}={path}", f"{path} {option}"]
    return [f"{option} {path}", f"{option}{path}"]


def test_vw_lists_its_file_options_so_the_probe_is_real() -> None:
    assert len(VW_OPTIONS) > 300
    for option in ("-f", "--final_regressor", "-p", "--predictions", "-r", "--raw_predictions",
                   "--output_feature_regularizer_text", "--readable_model", "-d", "--data", "--cache_file"):
        assert option in VW_OPTIONS


def test_the_watch_sees_a_write_and_a_read(watched) -> None:
    folder, watch = watched
    (folder / "store.db").read_bytes()
    assert watch.events() > 0
    (folder / "new").write_text("x")
    assert watch.events() > 0


def test_no_option_of_vw_touches_a_file_in_any_form(watched) -> None:
    folder, watch = watched
    touched, accepted = [], []
    for option in VW_OPTIONS:
        for path in (str(folder / "store.db"), "store.db", str(folder / "created.vw")):
            for vw_args in _forms(option, path):
                for whole in (f"--cb_explore_adf {vw_args}", f"--cb_explore_adf --epsilon 0.1 {vw_args}"):
                    if _try(whole):
                        accepted.append(whole)
                    if watch.events():
                        touched.append(whole)
    assert touched == []
    assert accepted == []  # no allowed option takes a value that a path could pass as
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]
    assert (folder / "store.db").read_bytes() == b"precious"


allowed_tokens = st.sampled_from([
    "--epsilon 0.1", "-q UA", "-qUU", "--cb_type ips", "--squarecb", "-l 0.5", "--power_t=0", "-b 16",
    "--bag 3", "--softmax", "--lambda 2", "--noconstant", "--ignore U", "--adaptive",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(allowed_tokens, max_size=3),
    option=st.sampled_from(VW_OPTIONS),
    value=st.sampled_from(["store.db", "created.vw", "./x", "../escape.vw", "1", "UA", ""]),
    attached=st.booleans(),
)
def test_a_path_anywhere_among_allowed_options_touches_nothing(watched, before, option, value, attached):
    folder, watch = watched
    separator = ("=" if option.startswith("--") else "") if attached else " "
    vw_args = " ".join(["--cb_explore_adf", *before, f"{option}{separator}{value}"])
    _try(vw_args)
    assert watch.events() == 0, vw_args
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]
    watch.events()  # the listing just made


@pytest.mark.parametrize(
    ("vw_args", "message"),
    [
        ("--cb_adf", "must contain --cb_explore_adf"),
        ("--cb_explore_adf -f model.vw", "-f is not an option SendLab allows"),
        ("--cb_explore_adf -f/etc/passwd", "-f is not an option SendLab allows"),
        ("--cb_explore_adf --final_regressor=model.vw", "--final_regressor is not an option SendLab allows"),
        ("--cb_explore_adf model.vw", "'model.vw' is not an option"),
        ("--cb_explore_adf --random_seed 3", "do not set --random_seed"),
        ("--cb_explore_adf --epsilon", "--epsilon needs a value"),
        ("--cb_explore_adf --epsilon often", "--epsilon expects a number, got 'often'"),
        ("--cb_explore_adf --epsilon nan", r"--epsilon must lie in \[0, 1\], got nan"),
        ("--cb_explore_adf --epsilon 0.1 --epsilon 0.2", "--epsilon is given twice"),
        ("--cb_explore_adf --softmax=1", "--softmax takes no value"),
        ("--cb_explore_adf --bag 2.5", "--bag expects a whole number"),
        ("--cb_explore_adf --cb_type foo", "--cb_type must be one of dm, dr, ips, mtr, sm"),
        ("--cb_explore_adf -q U", "--quadratic expects 2 namespace letters"),
        ("--cb_explore_adf -q ../", "--quadratic expects 2 namespace letters"),
        ("--cb_explore_adf --bag 2 --softmax", "choose one exploration algorithm, got --bag and --softmax"),
        ("--cb_explore_adf -b 24 --bag 2", "over 16,777,216 weights"),
        ("--cb_explore_adf 'unclosed", "cannot be split into options"),
        (3, "expected a string, got int"),
    ],
)
def test_bad_vw_args_are_named(vw_args, message) -> None:
    with pytest.raises(PolicyError, match=f"^options.vw_args: .*{message}"):
        parse_vw_args(vw_args)


def test_allowed_options_come_out_canonical_and_vw_takes_them() -> None:
    tokens = parse_vw_args("--cb_explore_adf -qUA -q UU --epsilon=0.05 -l 0.5 -b 16 --cb_type ips")
    assert tokens == ["--cb_explore_adf", "--quadratic", "UA", "--quadratic", "UU", "--epsilon", "0.05",
                      "--learning_rate", "0.5", "--bit_precision", "16", "--cb_type", "ips"]
    assert set(short_to_name.values()) <= set(name_to_option)
    policy = make_policy("vw", 3, options={"vw_args": "--cb_explore_adf -qUA --epsilon=0.05"})
    assert policy.probabilities(1).shape == (1, 3)


def test_every_allowed_option_is_one_vw_knows() -> None:
    assert {f"--{name}" for name in name_to_option} <= set(VW_OPTIONS)
