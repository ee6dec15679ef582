"""``deepyn serve`` refuses what cannot work before it starts a server (no kserve needed)."""

from __future__ import annotations

import pytest

from deepyn_gui.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve", "--backend", "remote:url=http://a:1"], "local backend"),
        (["serve", "--http-port", "70000"], "between 1 and 65535"),
        (["serve", "--ssl-certfile", "c.pem"], "both --ssl-certfile and --ssl-keyfile"),
    ],
)
def test_serve_refuses_in_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_batch_and_serve_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "batch" in out and "serve" in out
