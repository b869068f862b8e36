"""Upload a saved folder to the Hugging Face Hub (``--push-to-hub REPO``, ``oneshot(push_to_hub=...)``).

What can be checked before any work is (:func:`check_push_target`): the repo id's syntax (huggingface_hub's
own validator), a ``--save`` folder to upload, the hub reachable and a token that it accepts. The upload
itself (:func:`push_folder`) runs after the folder is saved; if it fails, the folder stays and the one
error line says how to retry.
"""

from __future__ import annotations

from pathlib import Path


def check_push_target(repo_id: str | None, save: str | None) -> None:
    """Fail before any work unless ``repo_id`` can be pushed to; None: no push."""
    if repo_id is None:
        return
    import huggingface_hub
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not save:
        raise ValueError("--push-to-hub uploads the saved folder: give --save DIR (oneshot: output_dir=) too")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ValueError(f"--push-to-hub {repo_id!r} is not a hub repo id: {exc}") from exc
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise ValueError(f"--push-to-hub {repo_id} needs the hub, but HF_HUB_OFFLINE is set; save with --save and "
                         "upload later with `hf upload REPO DIR`")
    try:
        huggingface_hub.HfApi().whoami()
    except Exception as exc:  # no token, a rejected one, no network: huggingface_hub raises many types
        raise ValueError(f"--push-to-hub {repo_id}: cannot sign in to the hub ({_first_line(exc)}); log in with "
                         "`hf auth login` or set HF_TOKEN, and check the network") from exc


def push_folder(folder: str | Path, repo_id: str) -> str:
    """Create ``repo_id`` if needed (exist_ok) and upload ``folder`` in one commit; returns the commit URL.
    A failure raises ValueError saying the folder is kept."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                                   commit_message=f"Upload {Path(folder).name}, pruned with crepe")
    except Exception as exc:  # network, permission, quota: huggingface_hub raises many types
        raise ValueError(f"upload to {repo_id} failed ({_first_line(exc)}); the pruned model is saved in {folder}: "
                         f"retry with `hf upload {repo_id} {folder}`") from exc
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo_id}")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
