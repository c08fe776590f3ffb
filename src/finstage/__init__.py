"""finstage: staged continual adaptation of a vision-language model to Japanese finance."""

__version__ = "0.1.0"
