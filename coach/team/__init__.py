"""The team layer: a team server's live board, roles, per-agent pages, self-review.

Pure parts: ``policy`` (what leaves an agent's machine), ``protocol`` (agent <-> server
messages), ``signals`` (customer signals from words), ``board`` (the live board as
state). Adapters: ``client`` (the agent's publisher and uploads), ``auth`` (tokens and
roles), ``bus`` (PostgreSQL LISTEN/NOTIFY between server processes), ``ingest``,
``server`` and ``api`` (the team server inside ``coach serve``), ``cli`` (``coach team``).
"""
