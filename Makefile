# The loss-landscape film studio.
#   make video [SCENE=scenes/default.yaml]   compute (cached) and render out/<scene>.mp4
#   make preview [SCENE=...]                 a small, fast film for checking a camera path
#   make storyboard [SCENE=...]              a contact sheet of the film's shots, with their cameras
#   make report [SCENE=...]                  the landscape's report: heat map, basins, figures
#   make view [SCENE=...]                    a window to find shots by eye: orbit, scrub, print keyframes
#   make test                                the test suite
#   SET="key=value ..."                      scene values overridden for this run, e.g.
#                                            make preview SCENE=scenes/x.yaml SET="landscape.grid.resolution=[150,150]"
# Each target sets itself up: a virtual environment in .venv with the pinned packages,
# and Mesa's EGL libraries for offscreen OpenGL (installed when run as root).

PYTHON ?= python3
SCENE  ?= scenes/default.yaml
SET    ?=
SETS   := $(foreach s,$(SET),--set $(s))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# the GPU checks' set-up step: `make gpu-check PY=python3 SETUP=` runs them with a machine's own
# PyTorch and no virtual environment (tools/gpu-session.sh, on an offline GPU machine)
SETUP  ?= setup
export PYTHONUNBUFFERED := 1

.PHONY: video preview compute render test bench gpu-check gpu-check-imagenette gl setup clean clean-cache

video: setup gl
	$(PY) -m compute $(SCENE) $(SETS)
	$(PY) -m render $(SCENE) $(SETS)

preview: setup gl
	$(PY) -m compute $(SCENE) $(SETS)
	$(PY) -m render $(SCENE) --preview $(SETS)

compute: setup
	$(PY) -m compute $(SCENE) $(SETS)

render: setup gl
	$(PY) -m render $(SCENE) $(SETS)

test: setup gl
	@tools/ensure-gl.sh $(PY) --viewer-test
	$(PY) -m pytest -q

# Benchmarks (not tests): ratios against a baseline measured in the same run, tables into docs/benchmarks.md,
# rows into out/bench.json. loss-landscapes (PyPI) is installed as a peer when it can be.
bench: setup gl
	-$(PY) -m pip install -q --no-deps loss-landscapes
	$(PY) -m compute.bench --json out/bench.json --readme docs/benchmarks.md --profile
	$(PY) -m render.bench --json out/bench.json --readme docs/benchmarks.md
	$(PY) -m render.bench --effects --sizes 1080p --json out/bench.json --readme docs/benchmarks.md

# On a machine with a CUDA GPU (under 5 minutes): the bench table on the GPU and the time of a
# 1000 x 1000 grid of the bench ConvNet.  Most of it is torch.compile (ten kernels compiled, outside the
# timings) and the rounds (3 cases x 7 methods x 3 rounds of at least 0.5 s); it prints its progress.
gpu-check: $(SETUP)
	$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: no CUDA device here')"
	-$(PY) -c "import loss_landscapes" 2>/dev/null || $(PY) -m pip install -q --no-deps --retries 1 --timeout 10 loss-landscapes
	$(PY) -m compute.bench --device cuda --rounds 3 --seconds 0.5 --grid 1000 --json out/bench-gpu.json

# On a machine with a CUDA GPU: scenes/imagenette_convnet.yaml's compute stage at full size (1000 x 1000),
# recomputed into out/gpu-check-cache, with the training time, grid time, points/s and total (stand-in
# images of the same shape, said so, where Imagenette is not in data/).  README: "Imagenette".
gpu-check-imagenette: $(SETUP)
	$(PY) -m compute.gpucheck scenes/imagenette_convnet.yaml --json out/gpu-check-imagenette.json $(SETS)

# A contact sheet of a scene's shots (out/<name>_storyboard.png) and the landscape's report
# (out/<name>_report.png: heat map, basins, convexity map and figures).
.PHONY: storyboard report gallery view
storyboard: setup gl
	$(PY) -m compute $(SCENE) $(SETS)
	$(PY) -m render $(SCENE) --storyboard --size 640x360 $(SETS)

report: setup
	$(PY) -m compute $(SCENE) $(SETS)
	$(PY) -m render $(SCENE) --report $(SETS)

# The viewer (render/viewer.py; needs a display): the cached landscape in the film's look; mouse orbits,
# pans and dollies, arrows scrub, space plays the scene's camera, k prints the camera as a keyframe line.
view: setup gl
	$(PY) -m compute $(SCENE) $(SETS)
	$(PY) -m render $(SCENE) --view $(SETS)

# The README's gallery: a still of each example scene, small, into docs/gallery/ (scene:seconds).
GALLERY := default:11 optimizers:10 orbit:9 regression:10 autoencoder:10 charlm:11 three_minima:12 follow:6 \
	lr_sweep:15
gallery: setup gl
	test -f runs/charlm/run.json || $(PY) scenes/examples/train_charlm.py --out runs/charlm --steps 1500
	for g in $(GALLERY); do s=$${g%%:*}; t=$${g##*:}; \
	  $(PY) -m compute scenes/$$s.yaml --quiet && \
	  $(PY) -m render scenes/$$s.yaml --still $$t --size 640x360 --out docs/gallery/$$s.png || exit 1; \
	done

# The scene's JSON Schema for editors (schemas/scene.schema.json) and the key tables of scenes/README.md,
# both generated from the scene schema in studio/scene/; the tests fail when either is stale.
.PHONY: schema scene-docs

schema: setup
	$(PY) -m studio.scene.jsonschema

scene-docs: setup
	$(PY) -m studio.scene.docs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

gl: setup
	@tools/ensure-gl.sh $(PY)

clean-cache:
	rm -rf cache

clean:
	rm -rf $(VENV) out cache *.egg-info
