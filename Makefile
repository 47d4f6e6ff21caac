# One entry point: `make demo`, `make test`, `make bench`, `make lint`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CALL   ?= audio_samples/02_every_apology_wrong.flac

.PHONY: setup sysdeps demo test lint bench bench-quick samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

# Debian tools the tests use: espeak-ng renders call scripts to audio.
sysdeps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else echo "note: espeak-ng missing (sudo apt-get install espeak-ng); TTS tests will skip"; fi; }

demo: setup
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

samples: setup sysdeps
	$(BIN)/python audio_samples/make_calls.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/out
