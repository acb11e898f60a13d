"""Sphinx configuration of retailflow's documentation: Markdown pages (MyST) under docs/, built strictly.

The site is built from the repository's root so that the pages the docs link to outside docs/ — the README,
benchmarks/RESULTS.md and the sample data's README — are pages of it too, and a link to any of them is checked
like any other:

    python -m sphinx -W --keep-going -b html -c docs . build/docs

tests/test_docs.py runs that build (warnings are errors: a broken link, a missing anchor or a page in no
table of contents fails it). docs/development.md says why Sphinx and MyST.
"""

project = "retailflow"
author = "the retailflow developers"
copyright = "the retailflow developers"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "docs/index"
# Only these files are pages. The folders excluded are not even walked: the virtualenv (.venv) alone holds tens of
# thousands of files.
include_patterns = ["README.md", "docs/**.md", "benchmarks/RESULTS.md", "src/retailflow/sample_data/README.md"]
exclude_patterns = [".*", "build", "work", "tests", "**/__pycache__"]

# Anchors as GitHub makes them from headings, so that `page.md#a-heading` works on GitHub and here alike.
myst_heading_anchors = 3

html_theme = "furo"
html_title = "retailflow"
html_show_sourcelink = False
