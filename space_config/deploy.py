"""Create or update the Space: upload only what it needs, and point it at a model and a flag dataset.

    python -m space_config.deploy --space USER/NAME [--model REPO] [--model-revision REV]
                                  [--flag-dataset REPO] [--private] [--set-token-secret] [--quantize int8]

The token comes from $HF_TOKEN or `hf auth login`. --set-token-secret stores $HF_TOKEN as the
Space's HF_TOKEN secret (needed to read a private model and to write the flag dataset).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from space_config.bundle import ROOT, bundle_files, walk

CONFIG = Path(__file__).resolve().parent
SDK_VERSION = "6.31.0"
# A CPU Space: PyTorch's CPU-only wheels (the PyPI ones bring CUDA libraries, gigabytes a CPU never uses).
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
CPU_BUILDS = {"torch", "torchvision"}


def space_requirements(root: Path = ROOT) -> str:
    """requirements.txt for the Space: the project's own pins for every distribution the bundle imports."""
    from importlib.metadata import packages_distributions

    _, imported = walk(root)
    providers = packages_distributions()
    wanted = {_normalise(dist) for name in imported for dist in providers.get(name, [name])}
    lines = [CPU_INDEX]
    for line in (root / "requirements.txt").read_text().splitlines():
        name = _normalise(line.split("==")[0]) if "==" in line and not line.startswith("#") else None
        if name in wanted:
            lines.append(f"{line}+cpu" if name in CPU_BUILDS else line)
            wanted.discard(name)
    if wanted:
        raise ValueError(f"The Space imports {sorted(wanted)}, which requirements.txt does not pin.")
    return "\n".join(lines) + "\n"


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def space_card(space_id: str, model: str | None, flag_dataset: str | None) -> str:
    from huggingface_hub import SpaceCard, SpaceCardData

    data = SpaceCardData(
        title="Multimodal emotion recognition",
        sdk="gradio",
        sdk_version=SDK_VERSION,
        python_version="3.11",
        app_file="app.py",
        license="apache-2.0",
        models=[model] if model else None,
        datasets=[flag_dataset] if flag_dataset else None,
        suggested_hardware="cpu-basic",
        short_description="Face + text emotion recognition with per-modality views",
        emoji="🎭",
        colorFrom="purple",
        colorTo="yellow",
        preload_from_hub=[model] if model else None,
    )
    card = SpaceCard.from_template(data, template_path=str(CONFIG / "card.md"), model=model, space_id=space_id)
    return str(card)


def stage(folder: Path, space_id: str, model: str | None, flag_dataset: str | None) -> list[str]:
    """Copy the Space's files (space_config.bundle) into `folder`; returns their repo paths."""
    paths = []
    for relative in bundle_files():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, folder / relative)
        paths.append(relative.as_posix())
    (folder / "requirements.txt").write_text(space_requirements())
    (folder / "README.md").write_text(space_card(space_id, model, flag_dataset))
    return sorted(paths + ["requirements.txt", "README.md"])


def deploy(
    space_id: str,
    model: str | None = None,
    model_revision: str | None = None,
    flag_dataset: str | None = None,
    private: bool = False,
    token: str | None = None,
    set_token_secret: bool = False,
    quantize: str | None = None,
) -> str:
    from huggingface_hub import HfApi

    from fusion.hub import explain_hub_errors

    api = HfApi(token=token)
    with explain_hub_errors("deploy to", space_id), tempfile.TemporaryDirectory() as tmp:
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        stage(Path(tmp), space_id, model, flag_dataset)
        info = api.upload_folder(
            repo_id=space_id,
            repo_type="space",
            folder_path=tmp,
            commit_message="Deploy the emotion recognition app",
            # Files the app no longer needs leave the Space too.
            delete_patterns=["*.py", *{f"{p.parts[0]}/**" for p in bundle_files() if len(p.parts) > 1}],
        )
        for key, value in (
            ("EMOTION_MODEL", model),
            ("EMOTION_MODEL_REVISION", model_revision),
            ("EMOTION_FLAG_DATASET", flag_dataset),
            ("EMOTION_QUANTIZE", quantize),
        ):
            if value:
                api.add_space_variable(space_id, key, value)
        if set_token_secret:
            secret = token or os.getenv("HF_TOKEN")
            if not secret:
                raise SystemExit("error: --set-token-secret needs $HF_TOKEN to be set.")
            api.add_space_secret(space_id, "HF_TOKEN", secret)
    return str(info.commit_url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True, help="Space repo id, USER/NAME")
    parser.add_argument("--model", default=None, help="model repo the Space serves")
    parser.add_argument("--model-revision", default=None)
    parser.add_argument("--flag-dataset", default=None, help="dataset repo that flags are synced to")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="serve int8 (EMOTION_QUANTIZE)")
    parser.add_argument("--set-token-secret", action="store_true", help="store $HF_TOKEN as the Space secret")
    args = parser.parse_args(argv)
    from fusion.hub import ModelSourceError

    try:
        url = deploy(args.space, args.model, args.model_revision, args.flag_dataset, args.private,
                     set_token_secret=args.set_token_secret, quantize=args.quantize)  # fmt: skip
    except ModelSourceError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"Deployed: {url}")


if __name__ == "__main__":
    main()
