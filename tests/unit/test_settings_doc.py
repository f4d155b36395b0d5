"""The settings reference cannot drift: README's table and .env.example are what Settings generates;
.env is read from the working directory (the environment wins); every default .env.example shows
is a value Settings accepts and means the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOW = "import json; from boxoffice.config import Settings; print(Settings().model_dump_json())"


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")} | extra


def _settings_in(cwd: Path, **extra: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_readme_and_env_example_are_generated_from_settings() -> None:
    done = subprocess.run(
        [sys.executable, "tools/settings_doc.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    from boxoffice.config import Settings

    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        if name != "metrics_dir":  # boxoffice's own, for its children
            # the standard OTEL_* variables keep their own names (validation_alias)
            choices = getattr(field.validation_alias, "choices", None)
            env = str(choices[0]) if choices else f"BOXOFFICE_{name.upper()}"
            assert f"{env}=" in example and f"`{env}`" in readme, name


def test_dot_env_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOXOFFICE_PORT=9123\nBOXOFFICE_GRPC_PORT=9124\n")
    assert _settings_in(tmp_path)["port"] == 9123
    both = _settings_in(tmp_path, BOXOFFICE_GRPC_PORT="9999")
    assert both["port"] == 9123 and both["grpc_port"] == 9999


def test_every_default_in_env_example_is_accepted_and_is_the_default(tmp_path: Path) -> None:
    lines = [
        line[2:]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith(("# BOXOFFICE_", "# OTEL_"))
    ]
    valued = [line for line in lines if not line.endswith("=")]
    assert len(valued) > 40
    (tmp_path / ".env").write_text("\n".join(valued) + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _settings_in(tmp_path) == _settings_in(empty)
