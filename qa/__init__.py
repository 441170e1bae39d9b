"""qa: ask questions about a document and get verbatim, paragraph-cited answers.

Importing this package is cheap: nothing here imports torch, faiss or gradio. Heavy
libraries are imported lazily by the modules that need them (`embedding`, `store`, `ui`).
"""

__version__ = "0.1.0"
