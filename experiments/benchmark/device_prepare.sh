#!/usr/bin/env bash
# Puts into .device/ (ignored: /.device/ in .gitignore) what the H200 of a device lease lacks
# for device_run.sh, here, before the lease, where the package registry can be reached:
#
#     bash experiments/benchmark/device_prepare.sh        # in the repository root; ~10 s
#
# then, with the device tool, from the checkout the session was started in:
#
#     run(command="bash experiments/benchmark/device_run.sh", carry=[".device"], timeout_s=390)
#
# (device_run.sh's header: what it runs, and its time budget.)
#
# .device/ holds, 3-4 MiB in all (the device tool takes at most 64 MiB with the working tree):
# - whl/: the wheels of the packages the H200's image lacks (/work/.library/device/KINDS.md),
#   each at the version installed here, the one the project runs with: datasets, dill,
#   multiprocess, seqeval, hydra-core, omegaconf, antlr4-python3-runtime, and fsspec, which the
#   image has but datasets bounds from above (fsspec<=2026.9.0 for datasets 5.2.0), so the
#   version datasets runs with here travels too. Downloaded for CPython 3.12 on manylinux
#   x86-64 (the device's python3); seqeval and antlr4-python3-runtime are published as sources
#   only, so pip builds them here (pure Python: py3-none-any);
# - wikiann/: WikiANN he (train and validation) in ../shared/wikiann's layout, its README's
#   configs reduced to he, so that datasets.load_dataset(".device/wikiann", "he") works offline;
# - step_floor.py: ../shared/gpu/step_floor.py, where one eager and one graph-captured step go.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

DEST=.device
SHARED=../shared
# Published as wheels; then as sources only (built here).
WHEELS=(datasets dill multiprocess hydra-core omegaconf fsspec)
BUILT=(seqeval antlr4-python3-runtime)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
    manylinux1_x86_64)

pinned() {  # NAME==VERSION for each name, at the version installed here
    python3 - "$@" <<'EOF'
import sys
from importlib.metadata import version

print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
EOF
}

rm -rf "$DEST"
mkdir -p "$DEST/whl" "$DEST/wikiann/he"

python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]/#/--platform=}" -d "$DEST/whl" $(pinned "${WHEELS[@]}")
python3 -m pip wheel -q --no-deps -w "$DEST/whl" $(pinned "${BUILT[@]}")
for name in "${BUILT[@]}"; do  # built here: they must not be tied to this python (3.11)
    ls "$DEST"/whl/"${name//-/_}"-*-py3-none-any.whl >/dev/null 2>&1 ||
        { echo "$name: pip built no py3-none-any wheel: $(ls "$DEST"/whl)" >&2; exit 1; }
done

cp "$SHARED"/wikiann/he/*.parquet "$DEST/wikiann/he/"
cat >"$DEST/wikiann/README.md" <<'EOF'
---
configs:
- config_name: he
  data_files:
  - split: train
    path: he/train-*.parquet
  - split: validation
    path: he/validation-*.parquet
---
# WikiANN he (train and validation), copied from ../shared/wikiann for a device lease

Its README.md says where the data comes from; this copy keeps the he configuration only, in the
same layout: datasets.load_dataset(".device/wikiann", "he").
EOF

cp "$SHARED/gpu/step_floor.py" "$DEST/"

echo "$DEST: $(du -sh "$DEST" | cut -f1) ($(ls "$DEST"/whl | wc -l) wheels: $(ls "$DEST"/whl | tr '\n' ' '))"
