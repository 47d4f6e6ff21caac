"""``coach team`` and ``coach serve --team`` from the command line (in process)."""

from __future__ import annotations

import pytest

from coach.cli import main
from coach.store import open_store
from coach.store.team import TeamData


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tokens_are_created_listed_and_revoked(capsys, tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    code, out, err = run(capsys, "team", "token", "create", "Dana Reyes", "--role", "agent",
                         "--team", "north", "--db", db)
    assert code == 0 and out.startswith("coach_") and len(out.strip()) > 40
    assert "token 1 for Dana Reyes (agent of team north)" in err and "not shown again" in err
    token = out.strip()
    with open_store(db) as s:  # stored hashed: the token itself is nowhere in the database
        assert TeamData(s).member(token).name == "Dana Reyes"
    assert token.encode() not in (tmp_path / "team.db").read_bytes()
    run(capsys, "team", "token", "create", "Ada", "--role", "admin", "--db", db)
    code, out, _ = run(capsys, "team", "token", "list", "--db", db)
    lines = out.splitlines()
    assert lines[0].split() == ["id", "role", "name", "team", "created"]
    assert "admin  Ada" in lines[1] and "agent  Dana Reyes" in lines[2] and "north" in lines[2]
    code, _, err = run(capsys, "team", "token", "revoke", "Dana Reyes", "--db", db)
    assert code == 0 and "revoked token 1 of Dana Reyes (agent)" in err
    code, out, _ = run(capsys, "team", "token", "list", "--db", db)
    assert "Dana" not in out
    code, out, _ = run(capsys, "team", "token", "list", "--revoked", "--db", db)
    assert "revoked 20" in out
    code, _, err = run(capsys, "team", "token", "revoke", "Dana Reyes", "--db", db)
    assert code == 2 and err == "coach: error: no active token for 'Dana Reyes'\n"


def test_bad_token_requests(capsys, tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    with pytest.raises(SystemExit):
        main(["team", "token", "create", "X", "--role", "boss", "--db", db])
    assert "invalid choice: 'boss'" in capsys.readouterr().err
    code, _, err = run(capsys, "team", "token", "create", "  ", "--role", "coach", "--db", db)
    assert code == 2 and err == "coach: error: bad name: give a non-empty name\n"


def test_the_policy_file(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "team", "policy")
    assert code == 0 and "private_cues: [tone-tense, tone-flat]" in out
    f = tmp_path / "p.yaml"
    f.write_text(out.replace("words: false ", "words: true  "))
    code, out, _ = run(capsys, "team", "policy", "--check", str(f))
    assert code == 0 and "valid" in out and "words" in out.split("Not shared")[0]
    f.write_text("live: {words: maybe}\n")
    code, _, err = run(capsys, "team", "policy", "--check", str(f))
    assert code == 2 and err == f"coach: error: {f}: live.words must be true or false\n"


def test_a_team_server_needs_tokens_first(capsys, tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    code, _, err = run(capsys, "serve", "--team", "--db", db, "--port", "0")
    assert code == 2 and "has no tokens yet: create an admin's first" in err
    assert err.count("\n") == 1
    code, _, err = run(capsys, "serve", "--team", "--db", db, "--policy",
                       str(tmp_path / "none.yaml"))
    assert code == 2 and "no such policy file" in err


def test_sync_needs_a_server_and_a_token(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("COACH_TEAM", raising=False)
    monkeypatch.delenv("COACH_TEAM_TOKEN", raising=False)
    code, _, err = run(capsys, "team", "sync", "--record-dir", str(tmp_path))
    assert code == 2 and "which team server?" in err
    code, _, err = run(capsys, "team", "sync", "--team", "http://127.0.0.1:9",
                       "--record-dir", str(tmp_path))
    assert code == 2 and "COACH_TEAM_TOKEN" in err
    monkeypatch.setenv("COACH_TEAM_TOKEN", "coach_x")
    code, _, err = run(capsys, "team", "sync", "--team", "ftp://x", "--record-dir",
                       str(tmp_path))
    assert code == 2 and "bad team server address 'ftp://x'" in err
    code, _, err = run(capsys, "team", "sync", "--team", "http://127.0.0.1:9",
                       "--record-dir", str(tmp_path))
    assert code == 0 and "sent 0 calls" in err  # nothing recorded: nothing to send
