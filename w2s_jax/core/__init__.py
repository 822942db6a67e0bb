"""The bottom layer: stable hashes, atomic artefacts, results paths, config files and small
parsers. Nothing here imports the rest of the package (errors aside)."""
