"""Bulk import of customers, products, orders and events from CSV, JSON Lines and Parquet."""

from patronage.collect.importing.mapping import KINDS as KINDS
from patronage.collect.importing.mapping import Mapping as Mapping
from patronage.collect.importing.mapping import load_mapping as load_mapping
from patronage.collect.importing.run import ImportResult as ImportResult
from patronage.collect.importing.run import run_import as run_import
from patronage.collect.importing.run import run_path as run_path
