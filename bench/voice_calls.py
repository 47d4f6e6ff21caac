"""Calls whose agent's voice rises after a calm start, for the voice cues through audio
(issue 9, item 7): ``pitch`` raises the agent's pitch by about half (espeak-ng ``-p``,
flite ``int_f0_target_mean``), ``loud`` raises their level by 10 dB, ``calm`` changes
nothing (the control). The calm part is long enough (over 30 s of agent speech) for the
engine to calibrate the agent's baseline; the rise lasts about 25 s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import soundfile as sf

from bench.render import SAMPLE_RATE, Voice, available, cache_key, lay_out, synthesise, write_phone

KINDS = ("pitch", "loud", "calm")
LOUD_DB = 10.0

CALM = (
    "Good afternoon, thanks for calling the help desk, my name is Sam.",
    "I can help you with that today, could I start with your account number?",
    "Thank you, and could you confirm the first line of your address for me?",
    "Lovely, I have the account open now and I can see the order from last week.",
    "It shows the parcel left our depot on Tuesday morning with the courier.",
    "The tracking says it is at the local sorting office at the moment.",
    "Those usually go out on the van the following morning, around nine.",
    "I will add a note to the order so the driver knows to knock at the side door.",
)
RAISED = (
    "Right, so the parcel should reach you tomorrow before lunch time.",
    "If it does not, ring us back and quote the order number on your email.",
    "I have also sent you a text with the tracking link just now.",
    "Is there anything else on the account that I can look at for you today?",
    "Then thank you for calling, and have a really good evening.",
)
CUSTOMER = ("Okay.", "Yes, sure.", "Right.", "That's fine.", "Okay, thanks.", "Mm-hm.")

# (calm agent voice, its raised-pitch variant), per engine
PITCH_PAIRS = {
    "espeak": (Voice("espeak", "en-us+m3", 140, 35), Voice("espeak", "en-us+m3", 140, 80)),
    "flite": (Voice("flite", "kal", 150, 90), Voice("flite", "kal", 150, 140)),
}
CUSTOMER_VOICE = {"espeak": Voice("flite", "slt", 160), "flite": Voice("espeak", "en-gb+f3", 160, 60)}


def engines() -> list[str]:
    return [e for e, (v, _) in PITCH_PAIRS.items() if available(v) and available(CUSTOMER_VOICE[e])]


def rise_call(kind: str, engine: str, out: Path, *, phone: bool = False) -> tuple[Path, float]:
    """Render (or reuse) one rising call; returns its path and the audio time the rise
    starts (the first raised agent turn)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    calm, raised = PITCH_PAIRS[engine]
    if kind == "loud":
        raised = replace(calm, gain_db=LOUD_DB)
    elif kind == "calm":
        raised = calm
    customer = CUSTOMER_VOICE[engine]
    key = cache_key({"kind": kind, "calm": calm, "raised": raised, "customer": customer,
                     "texts": [CALM, RAISED, CUSTOMER]})
    stem = out / f"rise-{kind}-{engine}-{key}"
    path = Path(f"{stem}.phone.wav" if phone else f"{stem}.16k.flac")
    rise_file = Path(f"{stem}.rise")
    if path.exists() and rise_file.exists():
        return path, float(rise_file.read_text())
    turns = []
    k = 0
    for texts, voice in ((CALM, calm), (RAISED, raised)):
        for text in texts:
            turns.append(("agent", synthesise(text, voice), 0.6))
            turns.append(("customer", synthesise(CUSTOMER[k % len(CUSTOMER)], customer), 0.5))
            k += 1
    stereo, spans = lay_out(turns)
    rise = spans[2 * len(CALM)][0]
    out.mkdir(parents=True, exist_ok=True)
    sf.write(f"{stem}.16k.flac", stereo, SAMPLE_RATE, subtype="PCM_16")
    write_phone(Path(f"{stem}.phone.wav"), stereo)
    rise_file.write_text(f"{rise:.3f}\n")
    return path, rise
