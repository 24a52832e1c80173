"""Where the platform reads and writes, taken from the environment with embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "LMS_DATA_DIR"
DUCKDB_PATH_ENV = "LMS_DUCKDB_PATH"
OUTPUT_DIR_ENV = "LMS_OUTPUT_DIR"

DEFAULT_DATA_DIR = "data"
DEFAULT_DUCKDB_PATH = "data/warehouse/lms.duckdb"
DEFAULT_OUTPUT_DIR = "outputs"


def data_dir() -> Path:
    """The study folder to read (``LMS_DATA_DIR``, default ``data``)."""
    return Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR))


def duckdb_path() -> Path:
    """The warehouse file (``LMS_DUCKDB_PATH``, default ``data/warehouse/lms.duckdb``)."""
    return Path(os.environ.get(DUCKDB_PATH_ENV, DEFAULT_DUCKDB_PATH))


def output_dir() -> Path:
    """Where charts and reports are written (``LMS_OUTPUT_DIR``, default ``outputs``)."""
    return Path(os.environ.get(OUTPUT_DIR_ENV, DEFAULT_OUTPUT_DIR))
