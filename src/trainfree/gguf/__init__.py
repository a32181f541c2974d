"""GGUF files of the ``llama`` space: their layout (:mod:`.layout`, from the config alone), the
writer (:mod:`.writer`) and llama.cpp's quantizer (:mod:`.quantizer`).

A package of its own, below :mod:`trainfree.hardware` (the llama.cpp backend writes and times
GGUF files, the cost model counts their bytes) and :mod:`trainfree.export` (which ships them),
so that neither imports the other. Importing it imports neither torch nor gguf.
"""
