"""The document layer shared by every command: blocks, notation, and one writer per format."""
