#!/usr/bin/env python3
"""Builds the crate docs/embedding.md tells a newcomer to write, outside the repository: its
[dependencies] block (paths to a checkout of scimd beside the application) and its complete
program, as a crate of their own in a fresh directory next to this checkout.

Usage: guide_crate.py REPO_ROOT WORK_DIR
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

root = pathlib.Path(sys.argv[1]).resolve()
work = pathlib.Path(sys.argv[2]).resolve()
guide = (root / "docs" / "embedding.md").read_text(encoding="utf-8")


def block(marker):
    m = re.search(r"<!-- ci: " + re.escape(marker) + r" -->\n```[^\n]*\n(.*?)```", guide, re.S)
    if not m:
        sys.exit(f"docs/embedding.md has no block marked '{marker}'")
    return m.group(1)


if work.exists():
    shutil.rmtree(work)
app = work / "app"
(app / "src").mkdir(parents=True)
# The guide's layout: the application, and scimd checked out beside it.
os.symlink(root, work / "scimd")
dependencies = block("Cargo.toml dependencies")
(app / "Cargo.toml").write_text(
    '[package]\nname = "guide-app"\nversion = "0.1.0"\nedition = "2024"\n\n' + dependencies + "\n[workspace]\n",
    encoding="utf-8",
)
(app / "src" / "main.rs").write_text(block("src/main.rs"), encoding="utf-8")
# The same dependency versions as the workspace's (a new root package is all cargo adds).
shutil.copy(root / "Cargo.lock", app / "Cargo.lock")
env = dict(os.environ, CARGO_TARGET_DIR=str(root / "target" / "guide-app"))
subprocess.run(["cargo", "build", "--quiet"], cwd=app, env=env, check=True)
print(f"built the guide's crate outside the repository ({app})")
