"""Gradio entry point: `python app.py` serves the chat (settings from QA_* variables; see README)."""

from qa.config import Settings
from qa.ui_startup import serve  # loads the index and model while gradio is imported

if __name__ == "__main__":
    serve(Settings.from_env())
