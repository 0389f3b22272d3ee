# Set-up and entry points. `make test` and `make demo` each create .venv when missing, install
# what the project needs (Debian packages too, when missing) and run; both are idempotent and
# fast once set up (the install re-runs only when pyproject.toml changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian libraries the Python wheels load at run time: PortAudio for sounddevice; the xcb
# libraries of Qt 6's desktop (xcb) platform; EGL/GL for Qt's offscreen platform; Xvfb (and
# xauth, which xvfb-run needs) for the tests that open the window on a real X server.
DEB_PACKAGES := libportaudio2 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 \
	libxkbcommon0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 xvfb xauth
PYTEST_ARGS ?=

.PHONY: test test-slow demo demo-checkpoint setup system-deps lint clean

setup: $(STAMP)

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: system-deps $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

# Exactly what the default run leaves out: the long tests (marked slow: torch.compile, training
# to an accuracy, the soak, the longer pipeline runs, ...) and the GPU ones (which skip themselves
# without a GPU). pytest's exit status 5 (no test selected, e.g. with a PYTEST_ARGS that holds
# none of them) is a pass here.
test-slow: system-deps $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "slow or cuda or tensorrt" $(PYTEST_ARGS) \
	  || [ $$? -eq 5 ]

demo: system-deps $(STAMP)
	$(BIN)/fnac demo

# The recipe of the shipped fnac/weights/demo.pth (about 75 minutes on a 2-core CPU). The world's
# seed and classes are those of the live synthetic source (seed 0, 8 classes); --calibrate sets the
# live app's sounding threshold and box level from the world's test set.
DEMO_WORLD := demo-world
demo-checkpoint: system-deps $(STAMP)
	$(BIN)/fnac synth $(DEMO_WORLD) --classes 8 --train 3000 --test 200 --duet 40 --silent 40 \
	  --streams 1 --stream-seconds 20 --image-size 224 --sample-rate 8000 --seed 0 --workers 2
	$(BIN)/fnac pretrain-image $(DEMO_WORLD) --out $(DEMO_WORLD)/objects-resnet18.pth --steps 80
	$(BIN)/fnac train --preset demo --data $(DEMO_WORLD)/train --test-data $(DEMO_WORLD)/test \
	  --imagenet-weights $(DEMO_WORLD)/objects-resnet18.pth --out runs/demo
	$(BIN)/fnac eval --checkpoint runs/demo/best.pth --data $(DEMO_WORLD) --json runs/demo/eval.json \
	  --calibrate fnac/weights/demo.pth

lint: $(STAMP)
	$(BIN)/ruff check fnac realtime gui train tests

clean:
	rm -rf $(VENV) demo-output demo-world build *.egg-info
