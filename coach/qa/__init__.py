"""Offline QA (``coach qa``): analyse a sample of recorded calls, score each on the apology
rubric (:mod:`coach.rubric`) and write reports a QA team reads to pick the calls to hear."""
