"""Gradio entry point: `python app.py` serves the chat (settings from QA_* variables; see README)."""

from qa.config import Settings
from qa.ui import serve

if __name__ == "__main__":
    serve(Settings.from_env())
