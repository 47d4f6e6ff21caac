"""QA's fast mode: the events of a finals-only analysis at a fraction of the decoder cost.

Live coaching re-recognises a growing buffer every second; QA needs only the final words.
This path keeps the pipeline's voice detection, prosody readings and cue engine and
changes only how the words are obtained:

1. The call is read once. Per channel, the streaming recognizer's VAD rules (the same
   ``StreamingOptions``: thresholds, energy gate, preroll, end-of-utterance silence,
   minimum length) cut utterances, and prosody is read once a second as in the pipeline.
2. Consecutive utterances of one channel are packed into windows of up to ``window_s``
   and each window is recognised once (greedy by default), with the channel's earlier
   words as the prompt, as the streaming recognizer does. On a CPU the Whisper encoder
   costs about the same per second of audio up to ~20-25 s of window and a decoder call
   has a fixed cost, so one pass over five short utterances costs far less than five
   passes padded to the streaming minimum of 10 s each; and a window of several
   utterances gives the decoder context (one utterance alone per greedy pass: WER +20 %).
   Only ~0.4 s of the end-of-utterance silence is kept. A pass whose output loops is
   decoded again with a beam; utterances a pass left without words (Whisper ends a
   window early now and then) are decoded again on their own. Word times come from the
   pass's alignment and are mapped back into the utterance they fall in.
3. Replay: the events go to the cue engine in the order the pipeline emits them: each
   word about when the streaming recognizer would commit it (``word_lag_s`` after it
   was spoken, and all of an utterance's words before its Turn), each prosody reading
   with the speaking rate known at that moment, so the cue logic (the pace of a long
   stretch of talk above all) sees what it would see live.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from coach.analyze import AnalysisResult
from coach.asr import StreamingOptions, clean_pass
from coach.asr_types import Transcriber, VoiceDetector
from coach.audio import BLOCK_S, SAMPLE_RATE
from coach.cues import CueEngine
from coach.cues.voice import stretch_rate_for
from coach.events import AGENT, CUSTOMER, Activity, CallEvent, Event, Prosody, Speaker, Turn, Word
from coach.io.audiofile import open_call
from coach.playbook import Playbook
from coach.prosody import ProsodyOptions, ProsodyTracker
from coach.rate import SpeakingRate
from coach.summary import CallSummary

__all__ = ["FastOptions", "analyze_fast"]


@dataclass(frozen=True, slots=True)
class FastOptions:
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    prosody: ProsodyOptions = field(default_factory=ProsodyOptions)
    # Utterances packed into one recognition pass, up to this long. Measured on the demo
    # and SpokenWOZ calls (bench/qa_bench.py): 12 s windows lose context (WER +20 %), 30 s
    # cost more encoder time per second; 20-30 s give about the offline WER.
    window_s: float = 24.0
    split_search_s: float = 4.0  # a longer utterance is cut at its quietest frame in here
    # Audio kept after an utterance's last voiced frame: the live recognizer hears the
    # whole end-of-utterance silence (1 s); a short tail is enough for the last word and
    # keeps the encoder (whose cost follows the audio length) on speech.
    tail_s: float = 0.4
    pack: bool = True  # False: one pass per utterance (for comparison)
    # Greedy: ~20 % cheaper than a beam of 5 for a few % more word errors; a looping
    # pass is redone with ``retry_beam``.
    beam_size: int = 1
    retry_beam: int = 5
    # In the replay a word reaches the cue engine this long after it was spoken, about when
    # the streaming recognizer commits it live (its second agreeing pass), and at the
    # latest when its utterance ends. Released only at the utterance's end, a long fast
    # stretch was over (the agent silent again) before the pace cue saw its words.
    word_lag_s: float = 1.0


@dataclass
class _Piece:
    """An utterance (or a part of a long one) waiting for its words."""

    speaker: Speaker
    start: int  # absolute sample of its first sample
    audio: np.ndarray
    words: list[Word] = field(default_factory=list)

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return (self.start + self.audio.size) / SAMPLE_RATE


class _Segmenter:
    """One channel's utterances, by the streaming recognizer's VAD rules (finals only)."""

    def __init__(self, speaker: Speaker, vad: VoiceDetector, options: FastOptions,
                 on_piece: Callable[[_Piece], None]):
        self.speaker = speaker
        self.o = options.streaming
        self._vad = vad
        self._frame = vad.frame_samples
        self._max = int(options.window_s * SAMPLE_RATE)
        self._search = max(1, int(options.split_search_s * SAMPLE_RATE / self._frame))
        self._tail = max(1, int(round(options.tail_s * SAMPLE_RATE / self._frame)))
        self._on_piece = on_piece
        self._pending = np.zeros(0, np.float32)
        self._pos = 0
        self._preroll: list[np.ndarray] = []
        self._in_speech = False
        self._silence = 0
        self._frames: list[np.ndarray] = []
        self._probs: list[float] = []
        self._buf_start = 0
        self._utt_start = 0.0
        self._last_voice_end = 0
        self._speech_frames = 0

    @property
    def speaking(self) -> bool:
        return self._in_speech

    def feed(self, audio: np.ndarray) -> list[object]:
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
        out: list[object] = []
        for i in range(n):
            out += self._on_frame(frames[i], float(probs[i]), float(energy[i]))
        return out

    def flush(self) -> list[object]:
        out: list[object] = []
        if self._pending.size:
            out += self.feed(np.zeros(self._frame - self._pending.size, np.float32))
        if self._in_speech:
            out += self._end()
        return out

    def _on_frame(self, frame: np.ndarray, prob: float, energy_db: float) -> list[object]:
        o = self.o
        start = self._pos
        self._pos += self._frame
        voiced = (prob >= (o.vad_off if self._in_speech else o.vad_on)
                  and energy_db >= o.energy_floor_db)
        if not self._in_speech:
            self._preroll.append(frame)
            keep = max(1, int(o.preroll_s * SAMPLE_RATE / self._frame))
            del self._preroll[:-keep - 1]
            if not voiced:
                return []
            self._in_speech = True
            self._silence = 0
            self._frames = list(self._preroll)
            self._probs = [0.0] * (len(self._frames) - 1) + [prob]
            self._buf_start = self._pos - sum(f.size for f in self._frames)
            self._preroll = []
            self._utt_start = start / SAMPLE_RATE
            self._last_voice_end = self._pos
            self._speech_frames = 1
            return [Activity(self.speaker, self._utt_start, True)]
        self._frames.append(frame)
        self._probs.append(prob)
        if voiced:
            self._silence = 0
            self._speech_frames += 1
            self._last_voice_end = self._pos
        else:
            self._silence += 1
            if self._silence * self._frame >= o.end_silence_s * SAMPLE_RATE:
                return self._end()
        if len(self._frames) * self._frame >= self._max:
            return self._split()
        return []

    def _long_enough(self) -> bool:
        return self._speech_frames * self._frame >= self.o.min_utterance_s * SAMPLE_RATE

    def _emit(self, n_frames: int) -> _Piece:
        piece = _Piece(self.speaker, self._buf_start, np.concatenate(self._frames[:n_frames]))
        self._on_piece(piece)
        self._buf_start += n_frames * self._frame
        del self._frames[:n_frames]
        del self._probs[:n_frames]
        return piece

    def _split(self) -> list[object]:
        """A long utterance: hand over what fits in a window, cut where the voice is least
        likely (a pause between words), and keep listening."""
        lo = max(1, len(self._probs) - self._search)
        cut = lo + int(np.argmin(self._probs[lo:])) + 1
        return [self._emit(cut)]

    def _end(self) -> list[object]:
        out: list[object] = []
        end = self._last_voice_end / SAMPLE_RATE
        if self._long_enough():
            voiced = (self._last_voice_end - self._buf_start) // self._frame
            if voiced > 0:  # (after a split, the rest may hold no voice at all)
                out.append(self._emit(min(len(self._frames), voiced + self._tail)))
            out.append(Turn(self.speaker, self._utt_start, end))
        out.append(Activity(self.speaker, end, False))
        self._frames = []
        self._probs = []
        self._in_speech = False
        self._preroll = []
        return out


class _Recogniser:
    """Packs one channel's pieces into windows and recognises each window once."""

    def __init__(self, transcriber: Transcriber, options: FastOptions):
        self._asr = transcriber
        self.o = options
        self._max = int(options.window_s * SAMPLE_RATE)
        self._queue: list[_Piece] = []
        self._queued = 0
        self._context: list[str] = []
        self._last_end = 0.0
        self.passes = 0
        self.retries = 0
        self._done: list[_Piece] = []

    def words(self) -> list[Word]:
        """Every word recognised so far, in time order."""
        return [w for p in self._done for w in p.words]

    def add(self, piece: _Piece) -> None:
        if self._queue and (self._queued + piece.audio.size > self._max or not self.o.pack):
            self.run()
        self._queue.append(piece)
        self._queued += piece.audio.size

    def run(self) -> None:
        pieces, self._queue, self._queued = self._queue, [], 0
        if not pieces:
            return
        so = self.o.streaming
        prompt = " ".join(self._context[-so.prompt_words:]) if so.prompt_words > 0 else ""
        found = self._decode(pieces, prompt, depth=0)
        self._done += pieces
        for i, p in enumerate(pieces):
            for text, start, end, prob in found.get(i, []):
                start = max(start, self._last_end)
                end = max(end, start)
                self._last_end = end
                p.words.append(Word(p.speaker, text, start, end, True, prob))
                self._context.append(text)
        del self._context[:max(0, len(self._context) - max(so.prompt_words, 0))]

    def _decode(self, pieces: list[_Piece], prompt: str, depth: int
                ) -> dict[int, list[tuple[str, float, float, float]]]:
        """Words (text, start, end, probability; call time) per piece of one window.

        Whisper sometimes ends a window early or passes over a short utterance in it;
        the voice detector heard speech there, so pieces left without words are decoded
        again on their own: runs of empty pieces together, then any still empty alone.
        """
        so = self.o.streaming
        audio = np.concatenate([p.audio for p in pieces])
        offsets = (np.cumsum([0] + [p.audio.size for p in pieces[:-1]]) / SAMPLE_RATE).tolist()
        result = self._transcribe(audio, prompt, self.o.beam_size)
        if (result.compression_ratio > so.compression_max
                and self.o.retry_beam > self.o.beam_size):
            self.retries += 1
            result = self._transcribe(audio, prompt, self.o.retry_beam)
        found: dict[int, list[tuple[str, float, float, float]]] = {}
        for w in clean_pass(result, so):
            text = w.text.strip()
            if not text:
                continue
            i = max(0, bisect.bisect_right(offsets, (w.start + w.end) / 2) - 1)
            p = pieces[i]
            start = min(max(p.start_s + (w.start - offsets[i]), p.start_s), p.end_s)
            end = min(max(p.start_s + (w.end - offsets[i]), start), p.end_s)
            found.setdefault(i, []).append((text, start, end, w.probability))
        if len(pieces) == 1 or depth >= 2:
            return found
        runs: list[list[int]] = []
        for i in range(len(pieces)):
            if i in found:
                continue
            if runs and runs[-1][-1] == i - 1 and depth == 0:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            before = [t for j in range(run[0]) for t, *_ in found.get(j, [])]
            again = " ".join((prompt.split() + before)[-max(so.prompt_words, 0):]) \
                if so.prompt_words > 0 else ""
            self.retries += 1
            sub = self._decode([pieces[i] for i in run], again, depth + 1)
            for k, words in sub.items():
                found[run[k]] = words
        return found

    def _transcribe(self, audio: np.ndarray, prompt: str, beam: int):
        self.passes += 1
        try:
            return self._asr.transcribe(audio, prompt=prompt, beam_size=beam)
        except TypeError:  # a transcriber without a per-pass beam (test fakes)
            return self._asr.transcribe(audio, prompt=prompt)


def analyze_fast(path: str | os.PathLike[str], *, transcriber: Transcriber,
                 make_vad: Callable[[], VoiceDetector], playbook: Playbook,
                 agent_channel: str = "left", options: FastOptions | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 progress: Callable[[float], None] | None = None,
                 block_s: float = BLOCK_S) -> AnalysisResult:
    """Analyse ``path`` in fast mode (see the module docstring); same result type as
    :func:`coach.analyze.analyze_file`, and ``on_event`` gets the events in pipeline
    order once the call is recognised. Raises ``AudioError`` for unreadable input."""
    o = options or FastOptions()
    call = open_call(path, agent_channel=agent_channel)
    info = call.info
    notices: list[str] = []
    if info.n_channels > 2:
        notices.append(f"{info.n_channels} channels: using {info.channels.describe()}; "
                       "the other channels are ignored")
    speakers: list[Speaker] = [AGENT] + ([CUSTOMER] if info.channels.customer is not None
                                         else [])
    recognisers = {sp: _Recogniser(transcriber, o) for sp in speakers}
    segmenters = {sp: _Segmenter(sp, make_vad(), o, recognisers[sp].add) for sp in speakers}
    prosody = {sp: ProsodyTracker(sp, options=o.prosody,
                                  pace=stretch_rate_for(playbook) if sp == AGENT else None)
               for sp in speakers}

    # pass 1: voice, prosody and recognition; the events are kept in pipeline order
    steps: list[tuple[list[tuple[list[object], list[Prosody]]], float]] = []
    samples = 0
    for block in call.blocks(block_s):
        blocks = {AGENT: block.agent, CUSTOMER: block.customer}
        per: list[tuple[list[object], list[Prosody]]] = []
        for sp in speakers:
            b = blocks[sp]
            if b is None:
                b = np.zeros_like(block.agent)
            items = segmenters[sp].feed(b)
            per.append((items, prosody[sp].feed(b, speaking=segmenters[sp].speaking)))
        samples += block.agent.size
        steps.append((per, samples / SAMPLE_RATE))
        if progress is not None:
            progress(samples / SAMPLE_RATE)
    end_items = []
    for sp in speakers:
        end_items.append((segmenters[sp].flush(), []))
        recognisers[sp].run()
    now = samples / SAMPLE_RATE

    # pass 2: replay through the cue engine in the order the pipeline would emit
    summary = CallSummary(duration_s=now)
    engine = CueEngine(playbook, customer_channel=CUSTOMER in speakers)
    rates = {sp: SpeakingRate(window_s=o.prosody.rate_window_s) for sp in speakers}

    def emit(events: list[Event]) -> None:
        for e in events:
            summary.add(e)
            if on_event is not None:
                on_event(e)

    # every recognised word, in the order it is released (see FastOptions.word_lag_s)
    due = sorted((w.end + o.word_lag_s, w.start, i, w) for sp in speakers
                 for i, w in enumerate(recognisers[sp].words()))
    released: set[int] = set()
    next_due = 0

    def word_out(w: Word) -> None:
        if id(w) in released:
            return
        released.add(id(w))
        rates[w.speaker].add(w)
        emit([w])
        emit(engine.feed(w))

    def release(t: float) -> None:
        nonlocal next_due
        while next_due < len(due) and due[next_due][0] <= t:
            word_out(due[next_due][3])
            next_due += 1

    def route(items: list[object], readings: list[Prosody]) -> None:
        for item in items:
            if isinstance(item, _Piece):
                for w in item.words:  # its utterance ended: the rest of its words are in
                    word_out(w)
                continue
            emit([item])
            emit(engine.feed(item))
        for p in readings:
            release(p.t)
            p = replace(p, wpm=rates[p.speaker].wpm())
            emit([p])
            emit(engine.feed(p))

    emit([CallEvent("start", 0.0, {"source": os.path.basename(str(path)),
                                   "sample_rate": info.sample_rate,
                                   "channel_map": info.channels.describe(),
                                   "channels": list(speakers)})])
    for per, t in steps:
        release(t - block_s)
        for items, readings in per:
            route(items, readings)
        release(t)
        emit(engine.advance(t))
    for items, readings in end_items:
        route(items, readings)
    emit(engine.advance(now))
    emit(engine.flush(now))
    end_info: dict = {"duration": round(now, 3)}
    if call.ended_early_at is not None:
        notices.append(f"the file ends early at {call.ended_early_at:.1f} s of "
                       f"{info.duration_s:.1f} s (truncated or corrupt); analysed what "
                       "could be decoded")
        end_info["ended_early_at"] = round(call.ended_early_at, 3)
    emit([CallEvent("end", now, end_info)])
    summary.duration_s = now
    return AnalysisResult(str(path), now, info.channels.describe(), info.sample_rate,
                          summary, notices)
