"""Output: results on stdout or in files, progress and per-input lines on stderr.

`render` shows results and progress (the only place Rich is imported),
`files` writes --output-dir result files whole, `report` is what a batch
tells the person or the CI log running it.
"""
