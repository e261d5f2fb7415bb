# Two commands for a fresh machine: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared
MODEL ?=
DETECTOR ?=
DATA ?=
FRAMES ?=

# The ROS 2 launch toolchain as wheels (launch, launch_ros, launch_testing, ros2cli, colcon, ament linters),
# for the launch, lint and colcon tests; they skip with a reason where ../shared/ros2 is absent.
ROS2_WHEELS := $(SHARED)/ros2
ROS2_STAMP := $(VENV)/.ros2-installed

.PHONY: setup test demo evaluate defences bench clean

setup: $(STAMP) $(if $(wildcard $(ROS2_WHEELS)/install.sh),$(ROS2_STAMP))

$(STAMP): requirements.txt requirements-python.txt setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(ROS2_STAMP): $(STAMP) $(wildcard $(ROS2_WHEELS)/install.sh $(ROS2_WHEELS)/requirements.txt $(ROS2_WHEELS)/wheels/*.whl)
	bash $(ROS2_WHEELS)/install.sh $(VENV)
	touch $@

# The suite in JOBS pytest-xdist workers (JOBS=0: in one process). In one process it keeps about one of two cores
# busy (much of it waits on subprocesses and DDS), and took over 15 minutes on a 2-core VM. --dist loadfile keeps
# each test file in one worker, so a module's fixtures (the protocol's fit, the colcon build) run once. The 15
# slowest tests close the log, which shows where the suite's time goes (the aim: under 15 minutes on a 2-core
# machine, setup included).
JOBS ?= 2

test: setup
	$(PY) -m pytest -q -ra --durations=15 -n $(JOBS) --dist loadfile

# make demo MODEL=ckpt DETECTOR=dir DATA=video|folder|bag [FRAMES=A:B]: the same demo on your own files.
demo: setup
	$(VENV)/bin/daain demo $(if $(MODEL),--model $(MODEL)) $(if $(DETECTOR),--detector $(DETECTOR)) \
		$(if $(DATA),--data $(DATA)) $(if $(FRAMES),--frames $(FRAMES)) --out out/demo

ESPNET := $(SHARED)/data/espnet/espnet_p_2_q_8.pth
DRIVE := $(SHARED)/data/footage/solidWhiteRight.mp4

out/detector/detector.json: | setup
	$(VENV)/bin/daain fit --model $(ESPNET) --data $(DRIVE) --frames 0:150 --out out/detector

# The adaptive attackers' own detectors: the same recipe, each with its own random key.
SURROGATES := out/surrogate1 out/surrogate2 out/surrogate3

out/surrogate%/detector.json: | setup
	$(VENV)/bin/daain fit --model $(ESPNET) --data $(DRIVE) --frames 0:150 --out out/surrogate$*

# The evaluation protocol (docs/evaluation.md): fit on frames 0-149, evaluate on 150-220 and the udacity_p1 stills.
evaluate: setup out/detector/detector.json $(SURROGATES:%=%/detector.json)
	$(VENV)/bin/daain evaluate --detector out/detector --model $(ESPNET) --data $(DRIVE) --frames 150:221 \
		--also $(SHARED)/data/footage/udacity_p1 --fit-data $(DRIVE) --fit-frames 0:150 \
		$(SURROGATES:%=--surrogate %) \
		--domain $(SHARED)/data/footage/udacity_720p --domain $(SHARED)/data/footage/other --out out/evaluate

# The defences tried against the key-agnostic attacker (docs/evaluation.md), on the protocol's detector and frames.
defences: setup out/detector/detector.json
	$(VENV)/bin/daain defences --detector out/detector --model $(ESPNET) --data $(DRIVE) --frames 150:221 \
		--also $(SHARED)/data/footage/udacity_p1 --fit-data $(DRIVE) --fit-frames 0:150 --out out/defences

bench: setup
	$(VENV)/bin/daain bench --model $(ESPNET) --footage $(DRIVE) --out out/bench.json

clean:
	rm -rf $(VENV) out build install log *.egg-info
