"""Input files as they come: how any file is parsed (parsing), the source mapping (mapping), how a mapped file is
read (expressions, reading), what an export's sample says about its columns (profiles), and the proposer behind
`retailflow map` (propose). Backends append what `parsing.FileRows` describes; nothing here imports a backend."""
