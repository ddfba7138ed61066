"""pyinfra facts of this project, importable as `facts.*` from the repo root (pyinfra puts cwd on
sys.path). One fact, one remote command per host: see facts/ollama_probe.py."""
