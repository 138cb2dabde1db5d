"""Where the repository is, for tests that start processes in it or read its files (README, docs, scripts).

Defined once here, so a test module's depth in the tree never decides which folder it takes for the root.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
