"""Streaming transcription policy for one speaker (pure: model and VAD come in as objects).

Audio arrives in blocks of any size. Silero VAD (plus an energy gate) finds utterances;
within one, the growing buffer is re-recognised every ``step_s`` of new audio. A word is
committed when two consecutive passes agree on it (LocalAgreement-2: policies
``agreement`` and ``early``) or also when the model is sure of it in one pass (its aligned
probability is high and it ends safely before the buffer's edge: policy ``sure``); the
rest is a partial tail that may still change. Policy ``early`` adds greedy look passes
between two passes (``look_s``) that commit nothing: after any pass the recogniser says
which uncommitted words are sure (``sure_until``) and how far it heard (``heard_until``),
for the early word cues of :mod:`coach.cues.early`. Intermediate passes may decode greedily, the final
pass of an utterance with the full beam. After ``end_silence_s`` of silence the utterance is
finalised. Committed words are forced as the decoder prefix of later passes, so they
never change and each pass decodes only the new tail. The buffer is trimmed at a
committed sentence end once it exceeds ``max_buffer_s``, so latency and cost stay bounded
on long monologues. Passes happen at fixed points of audio time (every ``step_s`` of
speech), never of wall time, so a file fed at full speed gives exactly the words a live
call would.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from coach.asr_types import AsrResult, AsrWord, Transcriber, VoiceDetector
from coach.audio import SAMPLE_RATE
from coach.events import Activity, Event, Speaker, Turn, Word

__all__ = ["DEFAULT_POLICY", "POLICIES", "StreamingOptions", "StreamingRecognizer", "clean_pass"]

_SENTENCE_END = (".", "?", "!")
_RECENT_WORDS = 12  # committed words remembered across trims and utterances (replay guard)


@dataclass(frozen=True, slots=True)
class StreamingOptions:
    """Field defaults are policy "agreement"; ``for_policy`` gives any policy, and
    DEFAULT_POLICY ("early": agreement's transcript of the agent, early word cues, the
    customer's side one pass per utterance) is the one the pipeline and the CLI use."""

    # "sure": commit a word from one pass when the model is sure of it, agreement between
    # passes for the rest, 0.5 s steps. "agreement": the earlier
    # policy (LocalAgreement-2 only, 1 s steps), kept so the benchmarks measure both side
    # by side (``--policy``).
    policy: str = "agreement"
    step_s: float = 1.0  # re-recognise after this much new audio
    # beam of intermediate passes (None: the model's default, 5). Greedy (1) is cheaper
    # but its one-pass commits are final: on MUL1423 it raised the WER from 0.222 to 0.248
    partial_beam: int | None = None
    # one-pass commit: aligned word probability at least this (None: never) and the word
    # ends at least guard_s before the buffer's edge (words at the edge are often cut)
    sure_prob: float | None = None
    guard_s: float = 0.3
    vad_on: float = 0.5  # speech probability that opens an utterance
    vad_off: float = 0.35  # ...and below which a frame counts as silence inside one
    end_silence_s: float = 1.0  # silence that ends an utterance
    preroll_s: float = 0.5  # audio kept from before the VAD fired (word onsets)
    min_utterance_s: float = 0.3  # shorter blips (clicks, breaths) are not sent to the model
    max_buffer_s: float = 15.0
    energy_floor_db: float = -60.0  # frames quieter than this are never speech
    prompt_words: int = 60  # committed context given to the model, no more
    no_speech_max: float = 0.6  # with avg_logprob < logprob_min: a hallucination on noise
    logprob_min: float = -1.0
    compression_max: float = 2.4  # repetitive output ("thank you thank you ...")
    finals_only: bool = False  # degrade under load: one pass per utterance, no partials
    # the customer's side one pass per utterance (the pipeline applies it): no cue needs
    # the customer's words before their turn ends, and one pass over the whole utterance
    # reads them at least as well as streaming (README: asr bench) for far less CPU
    customer_finals_only: bool = False
    # Words the model is unsure of are committed only once the passes that agree on them
    # have heard this much audio after them (or at the utterance's end): on the SpokenWOZ
    # calls, committing them on two-pass agreement alone made the streaming WER 1.10x the
    # offline WER; waiting for the final pass made cues up to 7 s late in long turns.
    min_commit_prob: float = 0.5
    unsure_context_s: float = 3.0
    # words to bias recognition toward, given before the prompt the way faster-whisper's
    # `hotwords` are; None: the playbook's (the pipeline fills them in)
    hotwords: tuple[str, ...] | None = None
    # policy "early": the pipeline judges the agent's uncommitted words for cues, those
    # at least this probable and guard_s before the buffer's edge (coach.cues.early).
    # Between two passes, a greedy look pass every look_s of new audio (None: none) gives
    # it fresher words without committing any: the transcript stays the agreement one.
    # 0.5 s: every 0.3 s gave a better word-cue p95 in audio time on the tuning half of
    # the judgement calls (1.38 s against 1.84 s, bench/cue_latency.py --tune 12), but
    # live on two cores its passes came in bursts and the service fell behind (README).
    early_prob: float | None = None
    look_s: float | None = None
    look_beam: int = 1

    @classmethod
    def for_policy(cls, policy: str, **changes) -> StreamingOptions:
        if policy not in POLICIES:
            raise ValueError(f"unknown streaming policy {policy!r}: use {' or '.join(POLICIES)}")
        return replace(cls(), **{**POLICIES[policy], **changes})


POLICIES: dict[str, dict] = {
    "early": {"policy": "early", "early_prob": 0.85, "look_s": 0.5, "customer_finals_only": True},
    "sure": {"policy": "sure", "step_s": 0.5, "sure_prob": 0.85},
    "agreement": {},
}
DEFAULT_POLICY = "early"


def _norm(text: str) -> str:
    return re.sub(r"[^\w']+", "", text.lower())


class StreamingRecognizer:
    """Turns one speaker's 16 kHz audio into Activity, Word and Turn events."""

    def __init__(self, speaker: Speaker, transcriber: Transcriber, vad: VoiceDetector, *,
                 options: StreamingOptions | None = None):
        self.speaker = speaker
        self.options = options or StreamingOptions()
        self._asr = transcriber
        self._vad = vad
        self._frame = vad.frame_samples
        self._pending = np.zeros(0, np.float32)  # samples waiting for a whole VAD frame
        self._queue: deque = deque()  # (frame, speech probability, dB) not yet processed
        # stop feeding frames after each pass, so a consumer that decides on a pass
        # (look_wanted) acts before the next frame whatever the block size (coach.pipeline)
        self.pause_after_pass = False
        self._pos = 0  # samples consumed by the VAD so far (absolute)
        self._preroll: list[np.ndarray] = []
        self._in_speech = False
        self._silence = 0  # frames of silence inside the current utterance
        self._buf: list[np.ndarray] = []
        self._buf_start = 0  # absolute sample of the buffer's first sample
        self._buf_len = 0
        self._utt_start = 0.0
        self._last_voice_end = 0  # absolute sample where the last speech frame ended
        self._speech_frames = 0
        self._last_pass = 0  # buffer length at the last pass
        self._last_look = 0  # ...at the last pass or look pass
        # policy "sure": the voice end that the last pass heard guard_s of silence after,
        # leaving nothing uncommitted; until the speaker resumes, passes would add nothing
        self._settled_at: int | None = None
        self._committed: list[Word] = []  # committed words still inside the buffer
        self._context: list[str] = []  # committed words before the buffer (the prompt)
        self._recent: list[str] = []  # the last committed words, normalised, across buffers
        self._just_trimmed = False  # the buffer starts where a committed word ended
        self._tail: list[Word] = []  # the last pass's uncommitted words
        self._last_end = 0.0
        self.passes = 0
        # after each pass: its uncommitted words, the end of those the model is sure of
        # (committed words count as sure), and how far it heard (the edge, less guard_s)
        self.tail: list[Word] = []
        self.sure_until = 0.0
        self.heard_until = 0.0
        self.look_wanted = True  # its consumer may say a look pass would tell it nothing

    # -- state for the pipeline ------------------------------------------------------------
    @property
    def now(self) -> float:
        return self._pos / SAMPLE_RATE

    @property
    def speaking(self) -> bool:
        return self._in_speech

    def set_options(self, **changes) -> None:
        """Change policy on the fly (the live service degrades under load this way)."""
        self.options = replace(self.options, **changes)

    # -- streaming -------------------------------------------------------------------------
    def feed(self, audio: np.ndarray) -> list[Event]:
        audio = np.asarray(audio, dtype=np.float32)
        if self._pending.size:
            audio = np.concatenate([self._pending, audio])
        n = audio.size // self._frame
        self._pending = audio[n * self._frame:].copy()
        if n == 0:
            return []
        frames = audio[: n * self._frame].reshape(n, self._frame)
        probs = self._vad.probs(frames.reshape(-1))
        energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        self._queue.extend((frames[i], float(probs[i]), float(energy[i])) for i in range(n))
        return self.resume()

    @property
    def paused(self) -> bool:
        """Frames are waiting: ``pause_after_pass`` stopped after a pass; call ``resume``."""
        return bool(self._queue)

    def resume(self) -> list[Event]:
        """Go on with the frames already fed (after a pause)."""
        out: list[Event] = []
        while self._queue:
            passes = self.passes
            out += self._on_frame(*self._queue.popleft())
            if self.pause_after_pass and self.passes != passes and self._queue:
                break  # let the consumer act on this pass before the next frame
        return out

    def flush(self) -> list[Event]:
        """End of audio: finalise any open utterance."""
        out: list[Event] = []
        if self._pending.size:
            pad = np.zeros(self._frame - self._pending.size, np.float32)
            out += self.feed(pad)
        while self._queue:
            out += self.resume()
        if self._in_speech:
            out += self._end_utterance()
        return out

    def _on_frame(self, frame: np.ndarray, prob: float, energy_db: float) -> list[Event]:
        o = self.options
        start = self._pos
        self._pos += self._frame
        threshold = o.vad_off if self._in_speech else o.vad_on
        voiced = prob >= threshold and energy_db >= o.energy_floor_db
        out: list[Event] = []
        if not self._in_speech:
            self._preroll.append(frame)
            keep = max(1, int(o.preroll_s * SAMPLE_RATE / self._frame))
            del self._preroll[:-keep - 1]
            if not voiced:
                return out
            self._in_speech = True
            self._silence = 0
            self._speech_frames = 0
            self._buf = list(self._preroll)
            self._buf_len = sum(f.size for f in self._buf)
            self._buf_start = self._pos - self._buf_len
            self._preroll = []
            self._last_pass = self._last_look = 0
            self._utt_start = start / SAMPLE_RATE
            self._last_voice_end = self._pos
            self._speech_frames = 1
            out.append(Activity(self.speaker, self._utt_start, True))
            return out
        self._buf.append(frame)
        self._buf_len += frame.size
        if voiced:
            self._silence = 0
            self._speech_frames += 1
            self._last_voice_end = self._pos
        else:
            self._silence += 1
            if self._silence * self._frame >= o.end_silence_s * SAMPLE_RATE:
                return self._end_utterance()
        if (not o.finals_only
                and self._speech_frames * self._frame >= o.min_utterance_s * SAMPLE_RATE
                and not self._settled()):
            if self._buf_len - self._last_pass >= o.step_s * SAMPLE_RATE:
                out += self._pass(final=False)
            elif o.look_s and self.look_wanted \
                    and self._buf_len - self._last_look >= o.look_s * SAMPLE_RATE:
                out += self._look()
        if self._buf_len >= o.max_buffer_s * SAMPLE_RATE:
            out += self._trim()
        return out

    # -- recognition -----------------------------------------------------------------------
    def _audio(self) -> np.ndarray:
        if len(self._buf) > 1:
            self._buf = [np.concatenate(self._buf)]
        return self._buf[0] if self._buf else np.zeros(0, np.float32)

    def _recognise(self, *, final: bool, beam: int | None = None) -> list[Word]:
        o = self.options
        self.passes += 1
        self._last_look = self._buf_len
        prefix = " ".join(w.text for w in self._committed)
        prompt = " ".join(self._context[-o.prompt_words:]) if o.prompt_words > 0 else ""
        if o.hotwords:
            prompt = (", ".join(o.hotwords) + ". " + prompt).strip()
        beam = beam or (None if final else o.partial_beam)
        kwargs = {} if beam is None else {"beam_size": beam}
        result: AsrResult = self._asr.transcribe(self._audio(), prompt=prompt, prefix=prefix,
                                                 **kwargs)
        if result.no_speech_prob > o.no_speech_max and result.avg_logprob < o.logprob_min:
            return []
        words = list(result.words)
        # drop the forced prefix: it comes back first, word for word
        skip = len(self._committed)
        if skip and [_norm(w.text) for w in words[:skip]] != [_norm(w.text)
                                                             for w in self._committed]:
            skip = _skip_by_text(words, prefix)
        new = words[skip:]
        if result.compression_ratio > o.compression_max:
            # a decoder loop ("anything else? anything else? ..."): keep the text up to
            # where it starts repeating; if no repetition is found, trust none of it
            cut = _loop_start(new)
            if cut is None:
                return []
            new = new[:cut]
        before = [] if self._committed else self._recent
        # at a new utterance a short repeat may be real ("Thank you. ... Thank you, bye"):
        # only a phrase of three words or more counts as an echo there
        new = _drop_replay(self._committed, new, before=before,
                           min_echo=2 if self._committed or self._just_trimmed else 3)
        if not self._committed and self._just_trimmed and new and self._recent \
                and _norm(new[0].text) == self._recent[-1] and new[0].start < 0.3:
            new = new[1:]  # the cut word read again at the buffer's start
        new = new[:_repeat_cut(self._committed, new, before=before)]
        return [self._to_word(w) for w in new if w.text.strip()]

    def _edge(self) -> float:
        """Audio time of the buffer's end."""
        return (self._buf_start + self._buf_len) / SAMPLE_RATE

    def _to_word(self, w: AsrWord) -> Word:
        offset = self._buf_start / SAMPLE_RATE
        start = max(offset + w.start, self._last_end)
        end = max(offset + w.end, start)
        return Word(self.speaker, w.text.strip(), start, end, False, w.probability)

    def _commit(self, words: list[Word]) -> list[Event]:
        out: list[Event] = []
        for w in words:
            start = max(w.start, self._last_end)
            fw = Word(w.speaker, w.text, start, max(w.end, start), True, w.probability)
            self._last_end = fw.end
            self._committed.append(fw)
            self._recent.append(_norm(fw.text))
            out.append(fw)
        del self._recent[:-_RECENT_WORDS]
        if words:
            self._just_trimmed = False
        return out

    def _look(self) -> list[Event]:
        """A pass that commits nothing: fresher uncommitted words for early cues."""
        hyp = self._recognise(final=False, beam=self.options.look_beam)
        self._hypothesis(hyp)
        return list(self.tail)

    def _hypothesis(self, tail: list[Word]) -> None:
        o = self.options
        self.tail = list(tail)  # uncommitted words (_to_word made them non-final)
        self.heard_until = self._edge() - o.guard_s
        self.sure_until = self._last_end
        for w in self.tail:
            if o.early_prob is None or w.probability < o.early_prob \
                    or w.end > self.heard_until:
                break
            self.sure_until = w.end

    def _pass(self, *, final: bool) -> list[Event]:
        self._last_pass = self._buf_len
        hyp = self._recognise(final=final)
        if final:
            out = self._commit(hyp)
            self._tail = []
            self.tail = []
            return out
        o = self.options
        edge = self._edge()
        agree = 0
        for i, b in enumerate(hyp):
            heard_after = edge - b.end
            sure = (o.sure_prob is not None and b.probability >= o.sure_prob
                    and heard_after >= o.guard_s)
            agreed = (i < len(self._tail) and _norm(self._tail[i].text) == _norm(b.text)
                      and (b.probability >= o.min_commit_prob
                           or heard_after >= o.unsure_context_s))
            if not (sure or agreed):
                break
            agree += 1
        out = self._commit(hyp[:agree])
        self._tail = hyp[agree:]
        self._hypothesis(self._tail)
        if o.policy == "sure" and not self._tail \
                and self._pos - self._last_voice_end >= o.guard_s * SAMPLE_RATE:
            self._settled_at = self._last_voice_end
        return out + self.tail

    def _settled(self) -> bool:
        return self._settled_at is not None and self._settled_at == self._last_voice_end

    def _end_utterance(self) -> list[Event]:
        o = self.options
        out: list[Event] = []
        if self._speech_frames * self._frame >= o.min_utterance_s * SAMPLE_RATE \
                and not self._settled():
            out += self._pass(final=True)
        self._settled_at = None
        end = self._last_voice_end / SAMPLE_RATE
        if self._speech_frames * self._frame >= o.min_utterance_s * SAMPLE_RATE:
            out.append(Turn(self.speaker, self._utt_start, end))
        out.append(Activity(self.speaker, end, False))
        self._context += [w.text for w in self._committed]
        del self._context[:max(0, len(self._context) - o.prompt_words)]
        self._committed = []
        self._tail = []
        self._buf = []
        self._buf_len = 0
        self._in_speech = False
        self._preroll = []
        return out

    def _trim(self) -> list[Event]:
        """Keep the buffer bounded: cut at the last committed sentence end (else the last
        committed word); with nothing committed, finalise what is there."""
        cut_at = None
        for i in range(len(self._committed) - 1, -1, -1):
            if self._committed[i].text.endswith(_SENTENCE_END):
                cut_at = i
                break
        if cut_at is None and self._committed:
            cut_at = len(self._committed) - 1
        out: list[Event] = []
        if cut_at is None:
            out += self._pass(final=True)
            cut_at = len(self._committed) - 1
            if cut_at < 0:  # the model heard nothing: drop the audio, keep listening
                self._restart_buffer(self._buf_len)
                return out
        cut_word = self._committed[cut_at]
        cut_sample = int(round(cut_word.end * SAMPLE_RATE)) - self._buf_start
        cut_sample = min(max(cut_sample, 0), self._buf_len)
        if cut_sample < SAMPLE_RATE:  # trimming would gain nothing: finalise instead
            out += self._pass(final=True)
            self._context += [w.text for w in self._committed]
            self._committed = []
            self._restart_buffer(self._buf_len)
            return out
        self._context += [w.text for w in self._committed[: cut_at + 1]]
        del self._context[:max(0, len(self._context) - self.options.prompt_words)]
        self._committed = self._committed[cut_at + 1:]
        self._restart_buffer(cut_sample)
        self._just_trimmed = True
        return out

    def _restart_buffer(self, drop: int) -> None:
        audio = self._audio()[drop:]
        self._buf = [audio] if audio.size else []
        self._buf_start += drop
        self._buf_len = audio.size
        self._last_pass = self._last_look = 0
        self._tail = []
        self._settled_at = None


def clean_pass(result: AsrResult, options: StreamingOptions) -> list[AsrWord]:
    """The words of one unprefixed pass that the streaming policy would trust: none for a
    hallucination on noise, a decoder loop cut where it starts repeating (none if no
    repetition is found), a phrase said twice in a row kept once. QA's fast mode uses it
    on its packed windows, so both paths reject the same failures."""
    o = options
    if result.no_speech_prob > o.no_speech_max and result.avg_logprob < o.logprob_min:
        return []
    words = list(result.words)
    if result.compression_ratio > o.compression_max:
        cut = _loop_start(words)
        if cut is None:
            return []
        words = words[:cut]
    return words[:_repeat_cut([], words)]


def _drop_replay(committed: list[Word], new: list[AsrWord], *,
                 before: list[str] = (), min_echo: int = 2) -> list[AsrWord]:
    """``new`` without the words in which the decoder merely replays text already committed.

    Past a forced prefix, or on a short window, the decoder sometimes starts the buffer's
    text over again ("Okay, what date exactly? Okay, what") or echoes its last words; the
    replay is aligned as zero-length words piled at the end of the audio. A stretch at
    the end of the buffer's text that repeats the text's beginning (two words or more) is
    cut; new words that open by repeating the last committed ones lose that echo. After a
    trim or at a new utterance nothing is committed in the buffer yet: ``before``, the
    words committed just before it (normalised), is what an echo would repeat.
    """
    old = [_norm(w.text) for w in committed]
    cand = [_norm(w.text) for w in new]
    full = old + cand
    for j in range(1, len(full) - 1):  # replay from the start of the buffer
        tail = full[j:]
        if len(tail) >= 2 and tail == full[: len(tail)]:
            new = new[: max(0, j - len(old))]
            cand = cand[: len(new)]
            break
    hist = list(before) + old
    for k in range(min(len(hist), len(cand)), min_echo - 1, -1):  # echo of the last k words
        if hist[-k:] == cand[:k]:
            return new[k:]
    return new


def _repeat_cut(committed: list[Word], new: list[AsrWord], *, min_words: int = 4,
                before: list[str] = ()) -> int:
    """How many of ``new`` to keep so that no phrase of ``min_words`` or more words is said
    twice in a row across the buffer's text and the words committed ``before`` it (a
    decoder stutter, even without a full loop: "...walk you through it. So if you want
    ... walk you through it.")."""
    old = list(before) + [_norm(w.text) for w in committed]
    full = old + [_norm(w.text) for w in new]
    n = len(full)
    for end in range(len(old) + 1, n + 1):  # the earliest point a repeat completes
        for p in range(min_words, end // 2 + 1):
            if full[end - 2 * p:end - p] == full[end - p:end]:
                return max(0, end - p - len(old))
    return len(new)


def _loop_start(words: list[AsrWord]) -> int | None:
    """Index where a looping output starts repeating itself, or None.

    A phrase of three or more words said twice in a row, or a one- or two-word phrase said
    three times, is a loop ("bye bye" and "no, no" are not)."""
    toks = [_norm(w.text) for w in words]
    n = len(toks)
    for i in range(n):
        for p in range(1, (n - i) // 2 + 1):
            reps = 3 if p <= 2 else 2
            if i + reps * p > n:
                continue
            chunk = toks[i:i + p]
            if all(toks[i + k * p:i + (k + 1) * p] == chunk for k in range(1, reps)):
                return i + p
    return None


def _skip_by_text(words: list[AsrWord], prefix: str) -> int:
    target = len(_norm(prefix))
    seen = 0
    for i, w in enumerate(words):
        if seen >= target:
            return i
        seen += len(_norm(w.text))
    return len(words)
