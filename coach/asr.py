"""Streaming transcription policy for one speaker (pure: model and VAD come in as objects).

Audio arrives in blocks of any size. Silero VAD (plus an energy gate) finds utterances;
within one, the growing buffer is re-recognised every ``step_s`` of new audio and the
words two consecutive passes agree on are committed (LocalAgreement-2); the rest is a
partial tail that may still change. After ``end_silence_s`` of silence the utterance is
finalised. Committed words are forced as the decoder prefix of later passes, so they
never change and each pass decodes only the new tail. The buffer is trimmed at a
committed sentence end once it exceeds ``max_buffer_s``, so latency and cost stay bounded
on long monologues. Passes happen at fixed points of audio time (every ``step_s`` of
speech), never of wall time, so a file fed at full speed gives exactly the words a live
call would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from coach.asr_types import AsrResult, AsrWord, Transcriber, VoiceDetector
from coach.audio import SAMPLE_RATE
from coach.events import Activity, Event, Speaker, Turn, Word

__all__ = ["StreamingOptions", "StreamingRecognizer", "clean_pass"]

_SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True, slots=True)
class StreamingOptions:
    step_s: float = 1.0  # re-recognise after this much new audio
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
    # Words the model is unsure of are committed only once the passes that agree on them
    # have heard this much audio after them (or at the utterance's end): on the SpokenWOZ
    # calls, committing them on two-pass agreement alone made the streaming WER 1.10x the
    # offline WER; waiting for the final pass made cues up to 7 s late in long turns.
    min_commit_prob: float = 0.5
    unsure_context_s: float = 3.0


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
        self._committed: list[Word] = []  # committed words still inside the buffer
        self._context: list[str] = []  # committed words before the buffer (the prompt)
        self._tail: list[Word] = []  # the last pass's uncommitted words
        self._last_end = 0.0
        self.passes = 0

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
        out: list[Event] = []
        for i in range(n):
            out += self._on_frame(frames[i], float(probs[i]), float(energy[i]))
        return out

    def flush(self) -> list[Event]:
        """End of audio: finalise any open utterance."""
        out: list[Event] = []
        if self._pending.size:
            pad = np.zeros(self._frame - self._pending.size, np.float32)
            out += self.feed(pad)
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
            self._last_pass = 0
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
                and self._buf_len - self._last_pass >= o.step_s * SAMPLE_RATE
                and self._speech_frames * self._frame >= o.min_utterance_s * SAMPLE_RATE):
            out += self._pass(final=False)
        if self._buf_len >= o.max_buffer_s * SAMPLE_RATE:
            out += self._trim()
        return out

    # -- recognition -----------------------------------------------------------------------
    def _audio(self) -> np.ndarray:
        if len(self._buf) > 1:
            self._buf = [np.concatenate(self._buf)]
        return self._buf[0] if self._buf else np.zeros(0, np.float32)

    def _recognise(self) -> list[Word]:
        o = self.options
        self.passes += 1
        self._last_pass = self._buf_len
        prefix = " ".join(w.text for w in self._committed)
        prompt = " ".join(self._context[-o.prompt_words:]) if o.prompt_words > 0 else ""
        result: AsrResult = self._asr.transcribe(self._audio(), prompt=prompt, prefix=prefix)
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
        new = _drop_replay(self._committed, new)
        new = new[:_repeat_cut(self._committed, new)]
        return [self._to_word(w) for w in new if w.text.strip()]

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
            out.append(fw)
        return out

    def _pass(self, *, final: bool) -> list[Event]:
        hyp = self._recognise()
        if final:
            out = self._commit(hyp)
            self._tail = []
            return out
        agree = 0
        edge = (self._buf_start + self._buf_len) / SAMPLE_RATE
        for a, b in zip(self._tail, hyp, strict=False):
            if _norm(a.text) != _norm(b.text) or (
                    b.probability < self.options.min_commit_prob
                    and edge - b.end < self.options.unsure_context_s):
                break
            agree += 1
        out = self._commit(hyp[:agree])
        self._tail = hyp[agree:]
        out += [Word(w.speaker, w.text, w.start, w.end, False, w.probability)
                for w in self._tail]
        return out

    def _end_utterance(self) -> list[Event]:
        o = self.options
        out: list[Event] = []
        if self._speech_frames * self._frame >= o.min_utterance_s * SAMPLE_RATE:
            out += self._pass(final=True)
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
        return out

    def _restart_buffer(self, drop: int) -> None:
        audio = self._audio()[drop:]
        self._buf = [audio] if audio.size else []
        self._buf_start += drop
        self._buf_len = audio.size
        self._last_pass = 0
        self._tail = []


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


def _drop_replay(committed: list[Word], new: list[AsrWord]) -> list[AsrWord]:
    """``new`` without the words in which the decoder merely replays the buffer.

    Past a forced prefix, or on a short window, the decoder sometimes starts the buffer's
    text over again ("Okay, what date exactly? Okay, what") or echoes its last words; the
    replay is aligned as zero-length words piled at the end of the audio. A stretch at
    the end of the buffer's text that repeats the text's beginning (two words or more) is
    cut; new words that open by repeating the last committed ones lose that echo.
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
    for k in range(min(len(old), len(cand)), 1, -1):  # echo of the last k committed words
        if old[-k:] == cand[:k]:
            return new[k:]
    return new


def _repeat_cut(committed: list[Word], new: list[AsrWord], *, min_words: int = 4) -> int:
    """How many of ``new`` to keep so that no phrase of ``min_words`` or more words is said
    twice in a row across the buffer's text (a decoder stutter, even without a full loop:
    "...walk you through it. So if you want ... walk you through it.")."""
    old = [_norm(w.text) for w in committed]
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
