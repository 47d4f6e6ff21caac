"""``coach team ...`` and the team parts of ``coach serve --team`` and ``coach live --team``.

Handlers take the parsed namespace and raise ``CoachError`` subclasses on bad input;
``coach`` prints those as one line (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from coach.errors import CoachError

__all__ = ["LiveTeam", "add_parsers", "run_team_serve"]

_DB_HELP = ("the team store's URL: postgresql://USER@HOST/DB, or sqlite:///PATH for one "
            "person (default: $COACH_DB, else SQLite in the data directory)")
POLICY_TEMPLATE = Path(__file__).resolve().parent / "policy.yaml"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``team`` on the ``coach`` command."""
    tm = subparsers.add_parser(
        "team", help="team server: tokens, the policy file, sending recorded calls",
        description="The team layer: role tokens (agent, coach, admin) for a team server "
                    "(`coach serve --team`), its privacy policy file, and sending calls "
                    "recorded while the server was away.")
    sub = tm.add_subparsers(dest="team_command", required=True,
                            metavar="{token,policy,sync}")
    tk = sub.add_parser("token", help="create, list and revoke tokens",
                        description="Tokens are stored hashed; a new one is printed once.")
    tks = tk.add_subparsers(dest="token_command", required=True,
                            metavar="{create,list,revoke}")
    c = tks.add_parser("create", help="a new token for an agent, a coach or an admin")
    c.add_argument("name", help="the person (an agent's name is the agent of their calls)")
    c.add_argument("--role", required=True, choices=("agent", "coach", "admin"),
                   help="agent (their own calls), coach (their team's) or admin (everything)")
    c.add_argument("--team", default=None,
                   help="the team of an agent, or the team a coach sees (default: none; a "
                        "coach without one sees every agent)")
    c.add_argument("--db", default=None, help=_DB_HELP)
    c.set_defaults(func=cmd_token_create)
    ls = tks.add_parser("list", help="who holds tokens (the tokens themselves are not kept)")
    ls.add_argument("--revoked", action="store_true", help="include revoked tokens")
    ls.add_argument("--db", default=None, help=_DB_HELP)
    ls.set_defaults(func=cmd_token_list)
    rv = tks.add_parser("revoke", help="revoke a token by id, or all of a person's by name",
                        description="Revoked tokens are refused at once; a connected agent "
                                    "is disconnected within seconds. Their calls stay.")
    rv.add_argument("who", help="a token id (from `coach team token list`) or a name")
    rv.add_argument("--db", default=None, help=_DB_HELP)
    rv.set_defaults(func=cmd_token_revoke)

    po = sub.add_parser("policy", help="print the default policy file, to edit",
                        description="Print the default team policy (YAML, commented) or "
                                    "check a policy file.")
    po.add_argument("--check", metavar="FILE", help="check FILE and say what it shares "
                                                    "(default: print the default policy)")
    po.set_defaults(func=cmd_policy)

    sy = sub.add_parser("sync", help="send recorded team calls the server does not have yet",
                        description="Send every call recorded with --team that did not "
                                    "reach the team server (it was down, or coach was "
                                    "killed mid-call). `coach live --team` does this too.")
    sy.add_argument("--team", dest="server", default=os.environ.get("COACH_TEAM"),
                    help="the team server (default: $COACH_TEAM)")
    sy.add_argument("--record-dir", default=None,
                    help="where calls were recorded (default: as `coach live` records, "
                         "$COACH_DATA/live or ~/.local/share/coach/live)")
    sy.set_defaults(func=cmd_sync)


def _store(args: argparse.Namespace) -> Any:
    from coach.store import open_store

    return open_store(getattr(args, "db", None) or os.environ.get("COACH_DB") or None)


def cmd_token_create(args: argparse.Namespace) -> int:
    from coach.store.team import TeamData

    with _store(args) as store:
        token, m = TeamData(store).create_token(args.name, args.role, args.team)
    team = f" of team {m.team}" if m.team else ""
    print(f"coach: token {m.token_id} for {m.name} ({m.role}{team}); give it to them, it is not "
          f"shown again:", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from coach.store.team import TeamData

    with _store(args) as store:
        members = TeamData(store).members(include_revoked=args.revoked)
    if not members:
        print("no tokens (create one: coach team token create NAME --role admin)")
        return 0
    print(f"{'id':>4}  {'role':<6} {'name':<24} {'team':<16} created")
    for m in members:
        created = (m.created_at or "")[:16].replace("T", " ")
        gone = f"  revoked {m.revoked_at[:16].replace('T', ' ')}" if m.revoked_at else ""
        print(f"{m.token_id:>4}  {m.role:<6} {m.name[:24]:<24} {(m.team or '—')[:16]:<16} "
              f"{created}{gone}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from coach.store.team import TeamData

    with _store(args) as store:
        gone = TeamData(store).revoke(args.who)
    for m in gone:
        print(f"coach: revoked token {m.token_id} of {m.name} ({m.role})", file=sys.stderr)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from coach.team.policy import load_policy

    if args.check:
        p = load_policy(args.check)
        print(f"{args.check}: valid. {p.sharing_line()}")
        return 0
    sys.stdout.write(POLICY_TEMPLATE.read_text(encoding="utf-8"))
    return 0


def _token() -> str:
    token = os.environ.get("COACH_TEAM_TOKEN", "").strip()
    if not token:
        raise CoachError("the team server needs this agent's token: set COACH_TEAM_TOKEN "
                         "(from `coach team token create NAME --role agent`)")
    return token


def _record_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    from coach.store import default_data_dir

    return default_data_dir() / "live"


def cmd_sync(args: argparse.Namespace) -> int:
    from coach.team.client import sync_recordings, team_urls

    if not args.server:
        raise CoachError("which team server? --team URL (or $COACH_TEAM)")
    team_urls(args.server)
    ids = sync_recordings(_record_dir(args.record_dir), args.server, _token(), idle_s=10.0)
    print(f"coach: sent {len(ids)} call{'s' if len(ids) != 1 else ''} to {args.server}",
          file=sys.stderr)
    return 0


# -- coach serve --team -----------------------------------------------------------------------


def run_team_serve(host: str, port: int, db_url: str | None, *, policy: str | None = None,
                   playbook: str | None = None) -> int:
    """``coach serve --team``: the team server until Ctrl-C (CoachError in one line for a
    store without tokens, a bad policy, a taken port)."""
    from coach.io.hub import Hub
    from coach.io.server import create_app, serve_forever
    from coach.playbook import load_playbook
    from coach.store import open_store
    from coach.store.team import TeamData
    from coach.team.policy import load_policy
    from coach.team.server import TeamServer

    pol = load_policy(policy)
    pb = load_playbook(playbook)
    store = open_store(db_url)
    try:
        if not TeamData(store).has_tokens():
            raise CoachError(f"{store.url} has no tokens yet: create an admin's first "
                             f"(coach team token create NAME --role admin --db ...)")
        team = TeamServer(store, pol, playbook=pb)
        app = create_app(Hub(), store=store, team=team)
        shown = f"[{host}]" if ":" in host else host
        print(f"coach: team server on http://{shown}:{port}/team (add ?token=YOUR_TOKEN), "
              f"calls in {store.url}; policy: {pol.source}; Ctrl-C to stop", file=sys.stderr)
        print(f"coach: {pol.sharing_line()}", file=sys.stderr)
        serve_forever(app, host, port)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


# -- coach live --team ------------------------------------------------------------------------


class LiveTeam:
    """A ``coach live`` session's link to its team server: publishes the call as it
    happens, sends it (and any earlier unsent call) to the team store when it ends."""

    def __init__(self, server: str, *, playbook: Any, hub: Any, record_dir: Path | None):
        from coach.team.client import TeamPublisher, new_call_id, team_urls

        team_urls(server)  # a bad address fails before the call starts
        self.server = server
        self.token = _token()
        self.call_id = new_call_id()
        self.record_dir = record_dir
        self.hub = hub
        self._said: str | None = None
        self.publisher = TeamPublisher(server, self.token, call_id=self.call_id,
                                       playbook=playbook, on_state=self._on_state).start()
        if record_dir is not None:  # calls that did not reach the server before
            threading.Thread(target=self._sync, name="coach-team-sync", daemon=True).start()

    @property
    def meta(self) -> dict[str, Any]:
        """Goes into the recording's call.json: the id the server knows the call by."""
        return {"team_call": self.call_id, "team": self.server}

    def publish(self, local: Any) -> Any:
        """The session's publish: the local overlay first, then the team server."""

        def both(message: dict[str, Any]) -> None:
            local(message)
            self.publisher.offer(message)

        return both

    def baseline(self) -> Any:
        """This agent's voice baseline learned by the team server from their stored
        calls (None for a new agent, or when the server cannot be reached)."""
        from urllib.parse import quote

        from coach.cues import Baseline
        from coach.team.client import _request

        try:
            code, me = _request("GET", f"{self.publisher.http_url}/api/team/me", self.token,
                                timeout=5)
            if code != 200:
                return None
            code, b = _request("GET", f"{self.publisher.http_url}/api/team/agents/"
                                      f"{quote(me['name'], safe='')}/baseline", self.token,
                               timeout=10)
        except CoachError as e:
            print(f"coach: team: no voice baseline ({e}); this call calibrates itself",
                  file=sys.stderr)
            return None
        if code != 200:
            return None
        print(f"coach: team: {b.get('message')}", file=sys.stderr)
        if not b.get("calls"):
            return None
        return Baseline(f0_hz=b.get("f0_hz"), loudness_db=b.get("loudness_db"),
                        wpm=b.get("wpm"))

    def _on_state(self, state: dict[str, Any]) -> None:
        self.hub.publish_threadsafe(state)  # the overlay says what is shared
        line = state.get("message") or ""
        if line and line != self._said:
            self._said = line
            print(f"coach: team: {line}", file=sys.stderr)

    def _sync(self) -> None:
        from coach.team.client import sync_recordings

        try:
            ids = sync_recordings(self.record_dir, self.server, self.token, idle_s=10.0)
            if ids:
                print(f"coach: team: sent {len(ids)} earlier call(s) to the team server",
                      file=sys.stderr)
        except CoachError as e:
            print(f"coach: team: earlier calls not sent yet ({e})", file=sys.stderr)

    def finish(self, recording: Path | None) -> None:
        from coach.team.client import upload_recording

        done = self.publisher.finish(timeout=10.0)
        if not done:
            print(f"coach: team: {self.publisher.pending} live events did not reach the "
                  "team server; the call is sent whole below or later", file=sys.stderr)
        if recording is None:
            return
        try:
            call_id = upload_recording(recording, self.server, self.token,
                                       policy=self.publisher.policy)
            if call_id:
                print(f"coach: team: call stored on the team server as {call_id}",
                      file=sys.stderr)
        except CoachError as e:
            print(f"coach: team: the call stays here for now ({e}); `coach team sync` or "
                  "the next `coach live --team` sends it", file=sys.stderr)
