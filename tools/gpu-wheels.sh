#!/usr/bin/env bash
# Fetch, on a machine with access to PyPI, the wheels the GPU machine lacks, into .whl/ (git-ignored):
# the GPU machines of this workplace have no network and a Python 3.12 with PyTorch, torchvision,
# numpy, PyYAML, tqdm and pytest, but not pydantic (the scene loader) or loss-landscapes (the bench's
# peer).  tools/gpu-session.sh installs them from .whl/ there.  The versions are the ones the
# project's virtual environment resolves today; the pins keep the set consistent.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .whl
py=${PYTHON:-python3}
for spec in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
            typing-extensions==4.16.0 loss-landscapes==3.0.6; do
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$spec"
done
ls -1 .whl
