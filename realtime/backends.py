"""The names of the inference backends (``realtime.engines`` makes them), importable without torch:
the command line's parsers and the window's picker list them before any model is loaded."""

BACKENDS = ("cpu", "int8", "eager", "compile", "tensorrt")  # in the picker's order
DEFAULT_BACKEND = "cpu"
