"""Puts tests/ (helpers.py) and dev/ (the stack runner) on the import path of every test."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "dev")]
