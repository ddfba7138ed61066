"""ollama-gpu-fix: why Ollama runs on the CPU, and the one fix that puts it back on the GPU."""

__version__ = "0.1.0"
