"""The README's Python example must run as written, saved as a script, the way a user runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_as_scripts(data_dir, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    env = {**os.environ, "TRAINFREE_DATA": str(data_dir)}
    for i, code in enumerate(blocks):
        script = tmp_path / f"readme_example_{i}.py"
        script.write_text(code)
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"README example {i} failed:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"README example {i} traceback:\n{done.stderr[-3000:]}"
        assert done.stdout.strip() and "nan" not in done.stdout.split(), done.stdout[-2000:]
